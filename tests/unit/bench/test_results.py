#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""The benchmarks' Markdown tables, and their results files."""

from bench import results


def test_a_table_has_its_header_a_rule_and_a_line_per_row():
    lines = results.table(('figure', 'value'), [('create', '23 ms'), ('volumes', 1000)])

    assert lines == ['| figure | value |', '|---|---|', '| create | 23 ms |',
                     '| volumes | 1000 |']


def test_publish_writes_the_table_into_a_new_directory(tmp_path, capsys):
    path = tmp_path / 'results' / 'bench.md'

    results.publish('\n'.join(results.table(('a', 'b', 'c'), [(1, 2, 3)])), str(path))

    assert path.read_text() == '| a | b | c |\n|---|---|---|\n| 1 | 2 | 3 |\n'
    assert capsys.readouterr().out == path.read_text()

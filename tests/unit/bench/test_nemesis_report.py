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

"""What a failed fault campaign keeps of its daemons' logs."""

from bench import nemesis


def write_log(workdir, kind, name, lines):
    directory = workdir / 'vpool' / kind / name
    directory.mkdir(parents=True)
    (directory / ('%s.log' % name)).write_text(''.join(line + '\n' for line in lines))


def test_the_excerpt_keeps_every_error_and_the_edges_warnings_in_time_order(tmp_path):
    write_log(tmp_path, 'routers', 'r1', [
        '2026-11-30 05:00:02.000 1 INFO x [-] registered',
        '2026-11-30 05:00:03.000 1 WARNING x [-] a router warning',
        '2026-11-30 05:00:04.000 1 ERROR x [-] IO error: boom'])
    write_log(tmp_path, 'edges', 'hva', [
        '2026-11-30 05:00:01.000 2 WARNING y [-] lost router r1',
        '2026-11-30 05:00:05.000 2 ERROR y [-] the FLUSH fails'])

    excerpt = nemesis._log_excerpt(str(tmp_path)).splitlines()

    assert [line.split(' [-] ')[1] for line in excerpt] == [
        'lost router r1', 'IO error: boom', 'the FLUSH fails']
    assert excerpt[1].startswith('  r1: ')


def test_a_run_without_errors_says_so(tmp_path):
    write_log(tmp_path, 'routers', 'r1', ['2026-11-30 05:00:02.000 1 INFO x [-] registered'])

    assert nemesis._log_excerpt(str(tmp_path)) == '  (none)'

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

"""A benchmark's table, and where it goes: the terminal and a results file."""

import os


def publish(text, path):
    """Print ``text`` and write it to ``path`` (its directory made)."""
    print(text)
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    with open(path, 'w') as f:
        f.write(text + '\n')


def table(header, rows):
    """The lines of a Markdown table: ``header``, the column names, and
    ``rows``, tuples of cells (each written with %s)."""
    return ['| %s |' % ' | '.join(header), '|%s' % ('---|' * len(header))] + \
        ['| %s |' % ' | '.join('%s' % cell for cell in row) for row in rows]

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

"""Comments and documentation cite only what is in the repository: the
design is docs/design.md, not notes or issue numbers a reader cannot find."""

import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOPS = ('ovs_daemon', 'ovs_cinder', 'tests', 'bench', 'tools', 'devstack', 'docs', 'etc',
        'releasenotes')
OUTSIDE_REFERENCES = re.compile(r'design[ -]brief|\bissues? #?\d+|\bthe seed\'s',
                                re.IGNORECASE)
THIS_FILE = os.path.relpath(os.path.abspath(__file__), REPO)


def repository_texts():
    yield 'README.md'
    for top in TOPS:
        for directory, subdirs, files in os.walk(os.path.join(REPO, top)):
            subdirs[:] = [d for d in subdirs if d not in ('__pycache__', 'build')]
            for name in files:
                if name.endswith(('.py', '.md', '.sh', '.rst', '.yaml', '.service',
                                  '.sample', '.conf')) or top == 'devstack':
                    yield os.path.relpath(os.path.join(directory, name), REPO)


def test_no_reference_to_what_is_not_in_the_repository():
    found = []
    for path in repository_texts():
        if path == THIS_FILE:
            continue
        with open(os.path.join(REPO, path)) as f:
            for number, line in enumerate(f, 1):
                if OUTSIDE_REFERENCES.search(line):
                    found.append('%s:%d: %s' % (path, number, line.strip()))
    assert found == []

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

"""Every source file carries the Apache License 2.0 header (LICENSE)."""

import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE_DIRS = ('ovs_daemon', 'ovs_cinder', 'tests', 'bench', 'tools', 'devstack', '.ci',
               'releasenotes')
SHELL_SCRIPTS_WITHOUT_SUFFIX = ('.ci/run', 'devstack/settings', 'devstack/override-defaults')
# The header's first line, as a comment at the top of the file.
HEADER = re.compile(r'^#\s+Licensed under the Apache License, Version 2\.0', re.M)


def source_files():
    for top in SOURCE_DIRS:
        for directory, subdirs, files in os.walk(os.path.join(REPO, top)):
            subdirs[:] = [d for d in subdirs if d != '__pycache__']
            for name in files:
                path = os.path.relpath(os.path.join(directory, name), REPO)
                if name.endswith(('.py', '.sh')) or path in SHELL_SCRIPTS_WITHOUT_SUFFIX:
                    yield path
    yield 'setup.py'


def lacks_header(path):
    with open(os.path.join(REPO, path)) as f:
        text = f.read()
    # An empty package marker has nothing to license.
    return bool(text.strip()) and not HEADER.search(text[:1000])


def test_every_source_file_has_the_license_header():
    assert [p for p in sorted(source_files()) if lacks_header(p)] == []


def test_license_is_apache_2():
    with open(os.path.join(REPO, 'LICENSE')) as f:
        assert 'Apache License\n                           Version 2.0' in f.read()

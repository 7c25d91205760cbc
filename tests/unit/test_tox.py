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

"""tox has OpenStack's standard environments; py3 runs what unit runs."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOX = os.path.join(os.path.dirname(sys.executable), 'tox')
STANDARD_ENVS = ('py3', 'unit', 'functional', 'pep8', 'genconfig', 'releasenotes')


def commands_of(envs):
    listing = subprocess.run([TOX, 'config', '-e', ','.join(envs), '-k', 'commands'],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout
    commands = {}
    for block in listing.strip().split('\n\n'):
        header, _, body = block.partition('\n')
        commands[header.strip('[]').removeprefix('testenv:')] = body
    return commands


def test_standard_environments_have_commands():
    commands = commands_of(STANDARD_ENVS)
    assert set(commands) == set(STANDARD_ENVS)
    assert all(body.strip() != 'commands =' for body in commands.values()), commands


def test_py3_runs_what_unit_runs():
    commands = commands_of(('py3', 'unit'))
    assert commands['py3'] == commands['unit']
    assert '-m \'not slow\'' in commands['unit']

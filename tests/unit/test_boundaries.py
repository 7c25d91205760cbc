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

"""The storage routers (ovs_daemon) run on storage nodes without Cinder,
os-brick or nova: they import nothing of ovs_cinder, which builds on them.
What both sides use (the control API clients, the NBD protocol) lives in
ovs_daemon."""

import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def imported_modules(path):
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


def modules_importing(package, forbidden):
    found = []
    for directory, _, files in os.walk(os.path.join(REPO, package)):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(directory, name)
                found += ['%s imports %s' % (os.path.relpath(path, REPO), module)
                          for module in imported_modules(path)
                          if module == forbidden or module.startswith(forbidden + '.')]
    return found


def test_ovs_daemon_imports_nothing_of_ovs_cinder():
    assert modules_importing('ovs_daemon', 'ovs_cinder') == []

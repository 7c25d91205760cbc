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

"""One exception class per meaning: the control interfaces' errors are the
classes of ovs_daemon/api/errors.py; a layer defines a class of the same
name only for another meaning."""

import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GENERIC_NAMES = {'BadRequest', 'NotFound', 'Conflict', 'Unavailable', 'Forbidden',
                 'Unauthorized'}


def classes_named(names):
    found = set()
    for package in ('ovs_daemon', 'ovs_cinder'):
        for directory, _, files in os.walk(os.path.join(REPO, package)):
            for name in files:
                if name.endswith('.py'):
                    path = os.path.join(directory, name)
                    with open(path) as f:
                        tree = ast.parse(f.read(), path)
                    found |= {(os.path.relpath(path, REPO), node.name)
                              for node in ast.walk(tree)
                              if isinstance(node, ast.ClassDef) and node.name in names}
    return found


def test_each_generic_error_is_defined_once_per_meaning():
    assert classes_named(GENERIC_NAMES) == {
        ('ovs_daemon/api/errors.py', name) for name in GENERIC_NAMES} | {
        # No such object in the backend's store.
        ('ovs_daemon/backends/base.py', 'NotFound'),
        # A compare-and-set in ZooKeeper lost.
        ('ovs_daemon/router/registry.py', 'Conflict'),
    }

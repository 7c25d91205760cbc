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

"""The data path the tests run is the compiled one, built from the current
sources (tests/conftest.py builds it at the start)."""

import importlib
import os
import subprocess
import sys

from ovs_daemon import compiled
from tests import conftest

BUILD = os.path.join(conftest.TOP, 'tools', 'build_extensions.py')


def check_build():
    return subprocess.run([sys.executable, BUILD, '--check'], capture_output=True, text=True)


def test_every_data_path_module_runs_compiled():
    assert compiled.running_as_python() == []


def test_the_build_is_current():
    result = check_build()
    assert result.returncode == 0, result.stdout


def test_a_source_edited_after_the_build_is_reported_stale():
    module = importlib.import_module('ovs_daemon.nbd.protocol')
    source = module.__file__.rsplit('.', 2)[0] + '.py'
    built = os.stat(module.__file__).st_mtime
    os.utime(source, (built + 1, built + 1))
    try:
        result = check_build()
    finally:
        os.utime(source, (built - 1, built - 1))
    assert result.returncode == 1
    assert 'ovs_daemon.nbd.protocol is not compiled from its current source' in result.stdout


def test_a_declarations_file_added_or_removed_after_the_build_makes_its_module_stale():
    # An extension built with a .pxd that is gone since (or without one
    # that is new) is laid out other than its sources say.
    declarations = os.path.join(conftest.TOP, 'ovs_daemon', 'nbd', 'admission.pxd')
    assert not os.path.exists(declarations)
    with open(declarations, 'w') as f:
        f.write('# typed nothing\n')
    try:
        added = check_build()
    finally:
        os.unlink(declarations)
    assert added.returncode == 1
    assert 'ovs_daemon.nbd.admission is not compiled from its current source' in added.stdout
    assert check_build().returncode == 0


def test_a_cimported_declaration_edited_after_the_build_makes_its_user_stale():
    # session.pxd cimports FramedConnection from connection.pxd: session is
    # compiled with that layout, so it is stale once it changes.
    session = importlib.import_module('ovs_daemon.nbd.session')
    connection = importlib.import_module('ovs_daemon.nbd.connection')
    declarations = os.path.join(conftest.TOP, 'ovs_daemon', 'nbd', 'connection.pxd')
    built = max(os.stat(session.__file__).st_mtime, os.stat(connection.__file__).st_mtime)
    before = os.stat(declarations)
    os.utime(declarations, (built + 1, built + 1))
    try:
        result = check_build()
    finally:
        os.utime(declarations, (before.st_atime, before.st_mtime))
    assert result.returncode == 1
    assert 'ovs_daemon.nbd.session is not compiled from its current source' in result.stdout

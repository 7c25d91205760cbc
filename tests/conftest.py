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

import os
import subprocess
import sys

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def running_in_ci():
    """CI runs .ci/run with CI=true (.ci/run sets it too)."""
    return os.environ.get('CI', '').strip().lower() in ('true', '1', 'yes')


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'slow: starts real processes (ZooKeeper, namespaces); run by tox -e functional')
    compile_the_data_path()


def compile_the_data_path():
    """The tests run the data path as the daemons do, compiled; an extension
    older than an edited ``.py`` would run the old code instead."""
    subprocess.run([sys.executable, os.path.join(TOP, 'tools', 'build_extensions.py')],
                   check=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # tools/bootstrap.sh installs every program and Python module the tests
    # use, and CI runs as root: a test skipped there would be a missing
    # install (or a lost test) behind a green run.
    outcome = yield
    report = outcome.get_result()
    if report.skipped and running_in_ci() and not hasattr(report, 'wasxfail'):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = 'failed'
        report.longrepr = 'skipped under CI, where every test must run: %s' % reason

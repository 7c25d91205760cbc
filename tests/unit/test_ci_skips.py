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

"""Under CI (CI=true) a test that skips fails: tools/bootstrap.sh installs
every program and module the tests use and CI runs as root, so a skip there
is a missing install hidden behind a green run. A developer's run without
root still skips what needs root."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SKIPPING = '''
import shutil

import pytest


@pytest.mark.skipif(shutil.which('no-such-program') is None, reason='no-such-program missing')
def test_marked():
    pass


def test_called():
    pytest.skip('needs root')


def test_imported():
    pytest.importorskip('no_such_module')


def test_runs():
    pass
'''


def run_pytest(tmp_path, ci):
    (tmp_path / 'test_skipping.py').write_text(SKIPPING)
    env = {name: value for name, value in os.environ.items() if name != 'CI'}
    if ci is not None:
        env['CI'] = ci
    return subprocess.run([sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider',
                           '-p', 'tests.conftest', '-rs', str(tmp_path / 'test_skipping.py')],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_a_skip_under_ci_is_a_failure(tmp_path):
    result = run_pytest(tmp_path, 'true')
    assert result.returncode == 1, result.stdout
    # A skipif marker acts in the test's setup (an error), the others in its call.
    assert '2 failed, 1 passed, 1 error' in result.stdout, result.stdout
    assert result.stdout.count('skipped under CI, where every test must run') == 3
    assert 'no-such-program missing' in result.stdout


def test_a_developer_run_still_skips(tmp_path):
    result = run_pytest(tmp_path, None)
    assert result.returncode == 0, result.stdout
    assert '1 passed, 3 skipped' in result.stdout, result.stdout

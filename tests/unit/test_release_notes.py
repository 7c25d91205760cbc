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

"""Release notes: every note in releasenotes/notes/ is one reno accepts, and
they build as tox -e releasenotes builds them."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RENO = os.path.join(os.path.dirname(sys.executable), 'reno')


def test_release_notes_pass_reno_lint():
    result = subprocess.run([RENO, 'lint'], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_release_notes_build_as_tox_builds_them(tmp_path):
    # tox -e releasenotes: sphinx-build with warnings as errors.
    sphinx_build = os.path.join(os.path.dirname(sys.executable), 'sphinx-build')
    result = subprocess.run([sphinx_build, '-a', '-E', '-W', '-q',
                             '-d', str(tmp_path / 'doctrees'), '-b', 'html',
                             'releasenotes/source', str(tmp_path / 'html')],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Multiattach volumes are safe' in (tmp_path / 'html' / 'unreleased.html').read_text()

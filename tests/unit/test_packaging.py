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

"""Packaging with pbr: the metadata comes from setup.cfg, the dependencies
from requirements.txt, the version from git (its latest tag)."""

import configparser
import importlib.metadata
import os
import re
import subprocess
import sys

from packaging import requirements
from packaging import utils

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def requirement_lines(name):
    with open(os.path.join(REPO, name)) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith('#')]


def test_installed_requirements_are_requirements_txt():
    installed = [r for r in importlib.metadata.requires('ovs-edge') if 'extra ==' not in r]
    assert sorted(installed) == sorted(requirement_lines('requirements.txt'))


def test_version_comes_from_git():
    # pbr: the latest tag, or 0.0.1.devN with no tag; never setuptools' 0.0.0.
    code = 'import pbr.version; print(pbr.version.VersionInfo("ovs-edge").release_string())'
    version = subprocess.run([sys.executable, '-c', code], cwd='/', capture_output=True,
                             text=True, check=True).stdout.strip()
    assert version == importlib.metadata.version('ovs-edge')
    assert version != '0.0.0'


def test_ruff_targets_the_python_the_project_requires():
    setup = configparser.ConfigParser()
    setup.read(os.path.join(REPO, 'setup.cfg'))
    minimum = re.fullmatch(r'>=\s*3\.(\d+)', setup['metadata']['python_requires']).group(1)
    with open(os.path.join(REPO, 'ruff.toml')) as f:
        assert re.search(r'^target-version = "py3%s"$' % minimum, f.read(), re.M)


def test_constraints_pin_what_the_requirements_bring_in_as_installed():
    # tools/constraints.py --check: every distribution requirements.txt and
    # test-requirements.txt bring in is pinned, at the version installed
    # here, and nothing else is.
    result = subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'constraints.py'),
                             '--check'], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_requirement_is_pinned_within_its_bounds():
    pins = dict(line.split('==') for line in requirement_lines('constraints.txt'))
    pins = {utils.canonicalize_name(name): version for name, version in pins.items()}
    for name in ('requirements.txt', 'test-requirements.txt'):
        for line in requirement_lines(name):
            requirement = requirements.Requirement(line)
            pin = pins.get(utils.canonicalize_name(requirement.name))
            assert pin is not None and requirement.specifier.contains(pin), (name, line, pin)

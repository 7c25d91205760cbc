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

"""tools/bootstrap.sh makes a fresh Debian machine ready: each package it
installs shows up where its probe looks, and the README names them all."""

import os
import re
import shutil
import subprocess

from ovs_daemon.devcluster import zookeeper

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bootstrap_packages():
    """(package, probe) of each entry of bootstrap.sh's packages list."""
    with open(os.path.join(REPO, 'tools', 'bootstrap.sh')) as f:
        listing = re.search(r'^packages=\(\n(.*?)^\)', f.read(), re.M | re.S).group(1)
    entries = [line.split('#')[0].strip() for line in listing.splitlines()]
    return [tuple(entry.split(':', 1)) for entry in entries if entry]


def test_every_probe_is_there_after_bootstrap():
    # tools/test.sh runs bootstrap.sh first: a probe that the package does
    # not provide would make every run install it again, or never.
    absent = [(package, probe) for package, probe in bootstrap_packages()
              if not (os.path.exists(probe) if probe.startswith('/')
                      else shutil.which(probe))]
    assert bootstrap_packages() and absent == []


def test_the_readme_names_every_package_bootstrap_installs():
    with open(os.path.join(REPO, 'README.md')) as f:
        readme = ' '.join(f.read().split())
    named = re.search(r'the Debian packages `([^`]*)`', readme).group(1).split()
    assert sorted(named) == sorted(package for package, _ in bootstrap_packages())


def test_the_packages_bring_what_the_suite_and_the_benchmarks_use():
    # fio's nbd engine (bench/fio.py), nbdkit's memory plugin (the
    # benchmarks' baseline) and the jars devcluster runs ZooKeeper from.
    for argv in (['fio', '--enghelp=nbd'], ['nbdkit', 'memory', '--dump-plugin']):
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (argv, result.stdout, result.stderr)
    assert [jar for jar in zookeeper.CLASSPATH if not os.path.exists(jar)] == []

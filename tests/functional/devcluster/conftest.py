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

import pytest

from ovs_daemon.devcluster import netns

# Distinct from the dev cluster's defaults so tests can run next to `up`.
TEST_PREFIX = 'ovsft'
TEST_SUBNET = '10.213.200.0/24'


@pytest.fixture
def stop_afterwards():
    """Register things with a stop() method; they are stopped even if the test fails."""
    started = []
    yield lambda thing: started.append(thing) or thing
    for thing in reversed(started):
        thing.stop()


def _needs_root():
    # Not installed is a failure (tools/bootstrap.sh installs both); only a
    # run without root has no network namespaces to test.
    if os.geteuid() != 0:
        pytest.skip('network namespaces need root')


@pytest.fixture
def network():
    _needs_root()
    with netns.Network(TEST_PREFIX, TEST_SUBNET) as net:
        yield net

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

import pytest

from ovs_daemon.devcluster import cluster as cluster_mod


@pytest.fixture
def make_vpool(tmp_path):
    """make_vpool(**Cluster.up arguments) starts a local vPool; every one
    is stopped by PID at the end, even if the test fails."""
    clusters = []

    def make(**kwargs):
        cluster = cluster_mod.Cluster(tmp_path / ('vpool%d' % len(clusters)))
        clusters.append(cluster)
        return cluster.up(**kwargs)

    yield make
    for cluster in clusters:
        cluster.down()


@pytest.fixture
def vpool(make_vpool):
    """ZooKeeper and routers r1, r2 (site a) and r3 (site b)."""
    return make_vpool(routers=3, sites=['a', 'a', 'b'])

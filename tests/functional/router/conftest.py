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

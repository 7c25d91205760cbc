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

from tests import cinder_threading  # noqa: F401,I001  (before any cinder import)
import pytest
from cinder import context as cinder_context
from cinder.volume import configuration
from oslo_config import cfg

from ovs_cinder.volume import driver as driver_mod
from ovs_daemon.devcluster import cluster as cluster_mod


@pytest.fixture
def vpool(tmp_path):
    cluster = cluster_mod.Cluster(tmp_path / 'vpool')
    try:
        yield cluster.up(routers=2, sites=['a', 'b'])
    finally:
        cluster.down()


@pytest.fixture
def ovs_driver(vpool):
    """The driver as cinder-volume builds it (keyword-only configuration,
    options in the backend's section), set up against the live vPool."""
    overrides = {'ovs_router_endpoints': [r['api'] for r in vpool.state['routers']],
                 'ovs_api_token_file': vpool.token_file}
    for name, value in overrides.items():
        cfg.CONF.set_override(name, value, group='backend_defaults')
    try:
        driver = driver_mod.OVSEdgeDriver(
            configuration=configuration.Configuration(driver_mod.ovs_opts,
                                                      config_group='ovs'))
        driver.do_setup(cinder_context.get_admin_context())
        driver.check_for_setup_error()
        yield driver
    finally:
        for name in overrides:
            cfg.CONF.clear_override(name, group='backend_defaults')


@pytest.fixture
def context():
    return cinder_context.get_admin_context()

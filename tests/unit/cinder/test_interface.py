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

"""The driver implements cinder's core and revert-to-snapshot interfaces
itself, with their signatures. (cinder's own compliance test accepts any
class, so it proves nothing.)"""

import inspect

from cinder.interface import volume_driver
from cinder.interface import volume_manageable_driver
from cinder.interface import volume_snapshot_revert
from cinder.volume import driver as cinder_driver
import pytest

from ovs_cinder.volume import driver

INTERFACES = (volume_driver.VolumeDriverCore,
              volume_snapshot_revert.VolumeSnapshotRevertDriver,
              volume_manageable_driver.VolumeManagementDriver)
# Of the listing interface, the driver lists volumes (not snapshots).
LISTING = ('get_manageable_volumes',)


def interface_methods():
    for interface in INTERFACES:
        for name, member in vars(interface).items():
            if inspect.isfunction(member) and not name.startswith('_'):
                yield interface.__name__, name, member
    for name in LISTING:
        yield 'VolumeListManageableDriver', name, getattr(
            volume_manageable_driver.VolumeListManageableDriver, name)


@pytest.mark.parametrize('interface, name, method', list(interface_methods()),
                         ids=lambda v: v if isinstance(v, str) else '')
def test_method_is_implemented_with_the_interface_signature(interface, name, method):
    ours = getattr(driver.OVSEdgeDriver, name, None)
    assert ours is not None, '%s.%s is missing' % (interface, name)
    inherited_stub = getattr(cinder_driver.BaseVD, name, None)
    implemented_here = any(name in vars(cls) for cls in driver.OVSEdgeDriver.__mro__
                           if cls.__module__.startswith('ovs_cinder'))
    assert implemented_here or inherited_stub is not None, name
    if not implemented_here:
        return  # cinder's own base class implements it (e.g. migration).
    expected = [p for p in inspect.signature(method).parameters]
    # The volume manager passes terminate_connection(force=...) beyond the
    # interface: a trailing **kwargs is allowed.
    actual = [p.name for p in inspect.signature(ours).parameters.values()
              if p.kind is not inspect.Parameter.VAR_KEYWORD]
    assert actual == expected, (name, actual, expected)


def test_driver_identity_and_options():
    assert driver.OVSEdgeDriver.VERSION == '1.0.0'
    assert driver.OVSEdgeDriver.CI_WIKI_NAME
    names = {opt.name for opt in driver.OVSEdgeDriver.get_driver_options()}
    assert {'ovs_router_endpoints', 'ovs_api_token_file', 'ovs_vpool'} <= names
    assert issubclass(driver.OVSEdgeDriver, cinder_driver.VolumeDriver)


def test_cinder_29_builds_it_with_a_keyword_only_configuration():
    signature = inspect.signature(cinder_driver.BaseVD.__init__)
    assert 'configuration' in signature.parameters
    from cinder.volume import configuration
    driver.OVSEdgeDriver(configuration=configuration.Configuration(
        driver.ovs_opts, config_group='ovs_interface_test'))

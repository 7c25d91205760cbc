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

"""OVSEdgeDriver against a live vPool, called as cinder's volume manager
calls it, with cinder's own volume and snapshot objects."""

import uuid

from cinder import exception
from cinder import objects
from cinder.objects import fields
from oslo_utils import units
import pytest

from ovs_cinder.volume import driver as driver_mod
from tests import cinder_objects
from tests.functional.clients import qemu_io
from tests.functional.clients import tcp_uri

pytestmark = pytest.mark.slow


volume = cinder_objects.volume
snapshot = cinder_objects.snapshot


def test_create_and_delete_volume_and_deleting_a_missing_one_succeeds(ovs_driver, vpool,
                                                                      context):
    vol = volume(context, size=2)
    ovs_driver.create_volume(vol)
    record = vpool.client().volume(vol.name)
    assert record['size'] == 2 * units.Gi
    ovs_driver.delete_volume(vol)
    ovs_driver.delete_volume(vol)
    assert vol.name not in [v['name'] for v in vpool.client().volumes()]


def test_the_backend_name_follows_name_id(ovs_driver, vpool, context):
    vol = volume(context, _name_id=str(uuid.uuid4()))
    ovs_driver.create_volume(vol)
    assert vol.name == 'volume-%s' % vol._name_id
    assert vpool.client().volume(vol.name)['name'] == vol.name


def test_snapshot_clone_and_volume_from_snapshot_grow_to_the_requested_size(
        ovs_driver, vpool, context):
    source = volume(context, size=1)
    ovs_driver.create_volume(source)
    snap = snapshot(context, source)
    ovs_driver.create_snapshot(snap)
    from_snapshot = volume(context, size=3)
    ovs_driver.create_volume_from_snapshot(from_snapshot, snap)
    clone = volume(context, size=2)
    ovs_driver.create_cloned_volume(clone, source)
    api = vpool.client()
    assert api.volume(from_snapshot.name)['parent'] == {'volume': source.name,
                                                        'snapshot': snap.name}
    assert api.volume(from_snapshot.name)['size'] == 3 * units.Gi
    assert api.volume(clone.name)['size'] == 2 * units.Gi
    assert api.volume(clone.name)['parent']['volume'] == source.name
    ovs_driver.delete_snapshot(snap)
    ovs_driver.delete_snapshot(snap)
    assert snap.name not in [s['name'] for s in api.snapshots(source.name)]


def test_extend_and_revert_keep_cinders_size(ovs_driver, vpool, context):
    vol = volume(context, size=1)
    ovs_driver.create_volume(vol)
    snap = snapshot(context, vol)
    ovs_driver.create_snapshot(snap)
    ovs_driver.extend_volume(vol, 2)
    vol.size = 2
    ovs_driver.revert_to_snapshot(context, vol, snap)
    assert vpool.client().volume(vol.name)['size'] == 2 * units.Gi


def test_initialize_connection_issues_a_token_per_host_and_terminate_revokes(
        ovs_driver, vpool, context):
    vol = volume(context)
    ovs_driver.create_volume(vol)
    info = ovs_driver.initialize_connection(vol, {'host': 'hv-a'})
    assert info['driver_volume_type'] == 'ovs_edge'
    data = info['data']
    assert (data['volume'], data['vpool'], data['host']) == (vol.name, 'default', 'hv-a')
    assert 'routers' not in data   # the edge calls the routers of its own configuration
    assert len(data['token']) >= 24
    ovs_driver.initialize_connection(vol, {'host': 'hv-b'})   # live migration: two at once
    assert vpool.client().volume(vol.name)['attachments'] == ['hv-a', 'hv-b']
    ovs_driver.terminate_connection(vol, {'host': 'hv-a'})
    assert vpool.client().volume(vol.name)['attachments'] == ['hv-b']
    ovs_driver.terminate_connection(vol, None)                # force detach
    assert vpool.client().volume(vol.name)['attachments'] == []
    with pytest.raises(exception.InvalidConnectorException):
        ovs_driver.initialize_connection(vol, {})


def attached_instances(vol, *hosts):
    """``vol.volume_attachment`` as cinder lists it: one attached instance
    per host given."""
    vol.volume_attachment = objects.VolumeAttachmentList(objects=[
        objects.VolumeAttachment(id=str(uuid.uuid4()), volume_id=vol.id,
                                 instance_uuid=str(uuid.uuid4()), attached_host=host,
                                 connector={'host': host},
                                 attach_status=fields.VolumeAttachStatus.ATTACHED)
        for host in hosts])


def test_two_instances_of_one_host_keep_its_attachment_until_the_last_detaches(
        ovs_driver, vpool, context):
    vol = volume(context, multiattach=True)
    ovs_driver.create_volume(vol)
    assert vpool.client().volume(vol.name)['multiattach'] is True
    first = ovs_driver.initialize_connection(vol, {'host': 'hv-a'})['data']
    second = ovs_driver.initialize_connection(vol, {'host': 'hv-a'})['data']
    assert second['token'] == first['token']   # the first instance's sessions stay valid
    owner = vpool.router(vpool.client().volume(vol.name)['owner'])
    uri = tcp_uri(owner['nbd'], '%s/%s' % (vol.name, first['token']))

    attached_instances(vol, 'hv-a', 'hv-a', 'hv-b')
    assert ovs_driver.terminate_connection(vol, {'host': 'hv-a'}) is True
    assert vpool.client().volume(vol.name)['attachments'] == ['hv-a']
    qemu_io(uri, 'write -P 5 0 4k', 'read -P 5 0 4k')

    attached_instances(vol, 'hv-a', 'hv-b')
    assert ovs_driver.terminate_connection(vol, {'host': 'hv-a'}) is False
    assert vpool.client().volume(vol.name)['attachments'] == []
    assert 'credential is not current' in qemu_io(uri, 'read 0 4k', expect_ok=False)


def test_a_volume_attached_without_multiattach_cannot_be_attached_with_it(
        ovs_driver, vpool, context):
    vol = volume(context)
    ovs_driver.create_volume(vol)
    ovs_driver.initialize_connection(vol, {'host': 'hv-a'})
    vol.multiattach = True
    with pytest.raises(driver_mod.OVSEdgeDriverError, match='without multiattach'):
        ovs_driver.initialize_connection(vol, {'host': 'hv-b'})
    assert vpool.client().volume(vol.name)['multiattach'] is False
    ovs_driver.terminate_connection(vol, None)
    ovs_driver.initialize_connection(vol, {'host': 'hv-b'})
    assert vpool.client().volume(vol.name)['multiattach'] is True


def test_manage_unmanage_and_list_manageable(ovs_driver, vpool, context):
    vpool.client().create_volume('legacy-disk', 3 * units.Gi)
    known = volume(context)
    ovs_driver.create_volume(known)
    listed = {v['reference']['source-name']: v for v in ovs_driver.get_manageable_volumes(
        [{'id': known.id, 'name': known.name}], None, 100, 0, ['size'], ['asc'])}
    assert listed['legacy-disk']['safe_to_manage'] is True
    assert listed['legacy-disk']['size'] == 3
    assert listed[known.name]['safe_to_manage'] is False
    assert listed[known.name]['cinder_id'] == known.id

    adopted = volume(context, size=3)
    ref = {'source-name': 'legacy-disk'}
    assert ovs_driver.manage_existing_get_size(adopted, ref) == 3
    update = ovs_driver.manage_existing(adopted, ref)
    adopted.provider_location = update['provider_location']
    ovs_driver.extend_volume(adopted, 4)
    assert vpool.client().volume('legacy-disk')['size'] == 4 * units.Gi
    ovs_driver.unmanage(adopted)
    assert vpool.client().volume('legacy-disk')['size'] == 4 * units.Gi
    with pytest.raises(exception.ManageExistingInvalidReference):
        ovs_driver.manage_existing(volume(context), {'source-name': 'nope'})


def test_stats_have_every_required_key_and_the_vpools_capacity(ovs_driver, vpool, context):
    ovs_driver.create_volume(volume(context, size=5))
    stats = ovs_driver.get_volume_stats(refresh=True)
    for key in ('volume_backend_name', 'vendor_name', 'driver_version', 'storage_protocol',
                'pools'):
        assert stats[key], key
    pool = stats['pools'][0]
    for key in ('pool_name', 'total_capacity_gb', 'free_capacity_gb', 'reserved_percentage',
                'thin_provisioning_support', 'thick_provisioning_support',
                'max_over_subscription_ratio', 'provisioned_capacity_gb'):
        assert key in pool, key
    assert pool['thin_provisioning_support'] is True
    assert pool['provisioned_capacity_gb'] == 5
    assert 0 < pool['free_capacity_gb'] <= pool['total_capacity_gb']


def test_unreachable_routers_and_a_bad_token_give_actionable_errors(ovs_driver, vpool,
                                                                   context, tmp_path):
    wrong = tmp_path / 'wrong-token'
    wrong.write_text('not-the-token\n')
    ovs_driver.configuration.ovs_api_token_file  # the option exists
    ovs_driver._client = type(ovs_driver._client)(
        ovs_driver._client.endpoints, 'not-the-token', timeout=5)
    with pytest.raises(driver_mod.OVSEdgeDriverError, match='refuse the token'):
        ovs_driver.create_volume(volume(context))
    for router in vpool.router_ids():
        vpool.stop_router(router)
    ovs_driver._client = type(ovs_driver._client)(ovs_driver._client.endpoints,
                                                  vpool.token, timeout=5)
    with pytest.raises(exception.VolumeBackendAPIException, match='failed on every router'):
        ovs_driver.create_volume(volume(context))

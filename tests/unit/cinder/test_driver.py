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

"""OVSEdgeDriver against a fake control client: every method, its calls to
the routers' control API and every error path, in seconds and without a
vPool (tests/functional/cinder runs the same driver against a live one)."""

from cinder import context as cinder_context
from cinder import exception
from cinder.volume import configuration
from oslo_config import cfg
from oslo_utils import units
import pytest

from ovs_cinder.volume import driver as driver_mod
from ovs_daemon.api import client as api_client
from ovs_daemon.api import errors as api_errors
from ovs_daemon.devcluster import certificates
from tests import cinder_objects

GiB = units.Gi
ROUTERS = [{'id': 'r1', 'site': 'a', 'api': 'http://10.0.0.1:8765', 'nbd': '10.0.0.1:10809',
            'started': 1.0},
           {'id': 'r2', 'site': 'b', 'api': 'http://10.0.0.2:8765', 'nbd': '10.0.0.2:10809',
            'started': 2.0}]


class FakeControlClient:
    """The routers' control API as the driver sees it: records each call,
    answers from ``answers`` and raises what ``failures`` names."""

    def __init__(self):
        self.calls = []
        self.answers = {'health': {'status': 'ok'}, 'routers': ROUTERS,
                        'create_attachment': {'token': 'T' * 24}, 'volumes': [],
                        'stats': {'capacity_bytes': 100 * GiB, 'free_bytes': 60 * GiB,
                                  'provisioned_bytes': 30 * GiB, 'used_bytes': 10 * GiB,
                                  'volumes': 3}}
        self.failures = {}

    def __getattr__(self, call):
        if call not in OPERATIONS:
            raise AttributeError(call)

        def record(*args, **kwargs):
            self.calls.append((call, args, kwargs))
            if call in self.failures:
                raise self.failures[call]
            return self.answers.get(call)
        return record


OPERATIONS = {name for name in vars(api_client.ControlClient) if not name.startswith('_')}


@pytest.fixture
def context():
    return cinder_context.get_admin_context()


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / 'token'
    path.write_text('s3cret-token-of-the-vpool\n')
    path.chmod(0o600)
    return path


@pytest.fixture
def driver(token_file):
    cfg.CONF.set_override('ovs_api_token_file', str(token_file), group='backend_defaults')
    try:
        ovs = driver_mod.OVSEdgeDriver(
            configuration=configuration.Configuration(driver_mod.ovs_opts,
                                                      config_group='ovs'))
        ovs._client = FakeControlClient()
        yield ovs
    finally:
        cfg.CONF.clear_override('ovs_api_token_file', group='backend_defaults')


volume = cinder_objects.volume
snapshot = cinder_objects.snapshot


@pytest.fixture
def objects(context):
    """The cinder objects the tables below name."""
    vol = volume(context, size=2)
    snap = snapshot(context, volume(context, size=1))
    return {'volume': vol, 'snapshot': snap, 'source': snap.volume,
            'managed': volume(context, provider_location='legacy-name'),
            'shared': volume(context, multiattach=True),
            'grown': volume(context, size=3), 'context': context,
            'connector': {'host': 'hv1', 'ovs_edge_site': 'a'}}


# driver method, its arguments (names of objects), the control API calls it
# makes (with names of objects' backend names), what it returns.
CALLS = [
    ('create_volume', ['volume'],
     [('create_volume', ('{volume}', 2 * GiB), {'multiattach': False})], None),
    ('create_volume', ['shared'],
     [('create_volume', ('{shared}', GiB), {'multiattach': True})], None),
    ('create_volume', ['managed'],
     [('create_volume', ('legacy-name', GiB), {'multiattach': False})], None),
    ('delete_volume', ['volume'], [('delete_volume', ('{volume}',), {})], None),
    ('create_volume_from_snapshot', ['grown', 'snapshot'],
     [('create_volume', ('{grown}', 3 * GiB),
       {'source': {'volume': '{source}', 'snapshot': '{snapshot}'},
        'multiattach': False})], None),
    ('create_cloned_volume', ['grown', 'volume'],
     [('create_volume', ('{grown}', 3 * GiB),
       {'source': {'volume': '{volume}'}, 'multiattach': False})], None),
    ('extend_volume', ['volume', 5], [('extend_volume', ('{volume}', 5 * GiB), {})], None),
    ('create_snapshot', ['snapshot'],
     [('create_snapshot', ('{source}', '{snapshot}'), {})], None),
    ('delete_snapshot', ['snapshot'],
     [('delete_snapshot', ('{source}', '{snapshot}'), {})], None),
    ('terminate_connection', ['volume', 'connector'],
     [('delete_attachment', ('{volume}', 'hv1'), {})], False),
    ('terminate_connection', ['volume', None], [('delete_attachments', ('{volume}',), {})],
     False),
    ('check_for_setup_error', [], [('health', (), {})], None),
    ('create_export', ['context', 'volume', 'connector'], [], None),
    ('ensure_export', ['context', 'volume'], [], None),
    ('remove_export', ['context', 'volume'], [], None),
    ('unmanage', ['volume'], [], None),
]


def resolve(value, objects):
    if isinstance(value, str) and value.startswith('{'):
        obj = objects[value.strip('{}')]
        return obj.provider_location or obj.name
    if isinstance(value, tuple):
        return tuple(resolve(v, objects) for v in value)
    if isinstance(value, dict):
        return {k: resolve(v, objects) for k, v in value.items()}
    return value


def arguments(names, objects):
    return [objects[n] if isinstance(n, str) else n for n in names]


@pytest.mark.parametrize('method, args, calls, result', CALLS,
                         ids=['%s(%s)' % (c[0], ','.join(map(str, c[1]))) for c in CALLS])
def test_method_makes_its_control_api_calls(driver, objects, method, args, calls, result):
    assert getattr(driver, method)(*arguments(args, objects)) == result
    assert driver._client.calls == [resolve(c, objects) for c in calls]


# Every method that calls the control API, with each error it may get:
# cinder sees an error naming the operation, or nothing for what is already
# done (a delete of something gone).
FAILING = [
    ('create_volume', ['volume'], 'create_volume', 'create volume'),
    ('delete_volume', ['volume'], 'delete_volume', 'delete volume'),
    ('create_volume_from_snapshot', ['grown', 'snapshot'], 'create_volume',
     'create volume'),
    ('create_cloned_volume', ['grown', 'volume'], 'create_volume', 'clone volume'),
    ('extend_volume', ['volume', 5], 'extend_volume', 'extend volume'),
    ('revert_to_snapshot', ['context', 'volume', 'snapshot'], 'revert', 'revert volume'),
    ('create_snapshot', ['snapshot'], 'create_snapshot', 'snapshot volume'),
    ('delete_snapshot', ['snapshot'], 'delete_snapshot', 'delete snapshot'),
    ('initialize_connection', ['volume', 'connector'], 'create_attachment', 'attach volume'),
    ('terminate_connection', ['volume', 'connector'], 'delete_attachment',
     'revoke the attachment'),
    ('terminate_connection', ['volume', None], 'delete_attachments', 'revoke the attachment'),
    ('check_for_setup_error', [], 'health', 'reach the vPool\'s routers'),
    ('get_volume_stats', [True], 'stats', 'read the vPool\'s capacity'),
    ('get_manageable_volumes', [[], None, 10, 0, ['size'], ['asc']], 'volumes',
     'list volumes'),
    ('manage_existing', ['volume', {'source-name': 'legacy'}], 'volume', 'look up volume'),
]
GONE_IS_DONE = {'delete_volume', 'delete_snapshot', 'terminate_connection'}


@pytest.mark.parametrize('method, args, call, message', FAILING,
                         ids=['%s:%s' % (f[0], f[2]) for f in FAILING])
@pytest.mark.parametrize('error', [api_errors.Unavailable, api_errors.Conflict,
                                   api_errors.BadRequest, api_errors.NotFound,
                                   api_errors.Unauthorized])
def test_an_api_error_becomes_a_driver_error(driver, objects, method, args, call, message,
                                             error):
    driver._client.failures[call] = error('%s failed' % call)
    if error is api_errors.NotFound and method in GONE_IS_DONE:
        getattr(driver, method)(*arguments(args, objects))
        return
    expected = (exception.ManageExistingInvalidReference
                if error is api_errors.NotFound and method == 'manage_existing'
                else driver_mod.OVSEdgeDriverError)
    with pytest.raises(expected) as raised:
        getattr(driver, method)(*arguments(args, objects))
    if expected is driver_mod.OVSEdgeDriverError:
        assert 'cannot %s' % message in str(raised.value)
    if error is api_errors.Unauthorized:
        assert 'refuse the token in %s' % driver.configuration.ovs_api_token_file in str(
            raised.value)


def test_initialize_connection_returns_the_connectors_properties(driver, objects):
    vol = objects['volume']
    info = driver.initialize_connection(vol, objects['connector'])
    assert info == {
        'driver_volume_type': 'ovs_edge',
        'data': {'vpool': 'default', 'volume': vol.name, 'name': vol.name, 'host': 'hv1',
                 'token': 'T' * 24, 'discard': True},
    }
    # The edge calls only the routers of its own configuration: the
    # connection info names none.
    assert driver._client.calls == [('create_attachment', (vol.name, 'hv1'),
                                     {'multiattach': False})]


@pytest.mark.parametrize('connector', [None, {}, {'host': ''}, {'ip': '10.0.0.9'}])
def test_initialize_connection_needs_the_connectors_host(driver, objects, connector):
    with pytest.raises(exception.InvalidConnectorException):
        driver.initialize_connection(objects['volume'], connector)
    assert driver._client.calls == []


@pytest.mark.parametrize('volume_size, snapshot_size, calls', [
    (1, 1, ['revert']),
    (3, 1, ['revert', 'extend_volume']),
])
def test_revert_keeps_cinders_size(driver, context, volume_size, snapshot_size, calls):
    vol = volume(context, size=volume_size)
    snap = snapshot(context, vol, size=snapshot_size)
    driver.revert_to_snapshot(context, vol, snap)
    assert [c[0] for c in driver._client.calls] == calls
    if 'extend_volume' in calls:
        assert driver._client.calls[1][1] == (vol.name, volume_size * GiB)


@pytest.mark.parametrize('stats, total, free', [
    ({'capacity_bytes': 100 * GiB, 'free_bytes': 60 * GiB}, 100.0, 60.0),
    ({'capacity_bytes': None, 'free_bytes': None}, 'unknown', 'unknown'),
])
def test_stats_report_one_pool_without_fields_cinder_computes(driver, stats, total, free):
    driver._client.answers['stats'] = dict(stats, provisioned_bytes=30 * GiB,
                                           used_bytes=10 * GiB, volumes=3)
    report = driver.get_volume_stats(refresh=True)
    assert report['storage_protocol'] == 'nbd'
    assert report['driver_version'] == driver.VERSION
    [pool] = report['pools']
    assert (pool['total_capacity_gb'], pool['free_capacity_gb']) == (total, free)
    assert pool['provisioned_capacity_gb'] == 30.0
    assert pool['thin_provisioning_support'] and pool['multiattach']
    # cinder's volume manager counts what it allocated itself.
    assert 'allocated_capacity_gb' not in pool


@pytest.mark.parametrize('reference, error', [
    ({}, 'source-name is required'),
    (None, 'source-name is required'),
    ({'source-name': ''}, 'source-name is required'),
])
def test_manage_needs_a_source_name(driver, objects, reference, error):
    with pytest.raises(exception.ManageExistingInvalidReference, match=error):
        driver.manage_existing(objects['volume'], reference)
    assert driver._client.calls == []


def test_manage_keeps_the_backend_name_and_rounds_the_size_up(driver, objects):
    driver._client.answers['volume'] = {'name': 'legacy', 'size': GiB + 1}
    reference = {'source-name': 'legacy'}
    assert driver.manage_existing(objects['volume'], reference) == {
        'provider_location': 'legacy'}
    assert driver.manage_existing_get_size(objects['volume'], reference) == 2


def test_manage_of_a_missing_volume_names_the_vpool(driver, objects):
    driver._client.failures['volume'] = api_errors.NotFound('no volume legacy')
    with pytest.raises(exception.ManageExistingInvalidReference, match='in vPool default'):
        driver.manage_existing(objects['volume'], {'source-name': 'legacy'})


def test_manageable_volumes_say_which_are_safe(driver, context):
    known = volume(context)
    driver._client.answers['volumes'] = [
        {'name': known.name, 'size': GiB, 'attachments': []},
        {'name': 'free-one', 'size': 2 * GiB, 'attachments': []},
        {'name': 'busy-one', 'size': GiB // 2, 'attachments': ['hv1']},
    ]
    entries = driver.get_manageable_volumes([known], None, 10, 0, ['reference'], ['asc'])
    by_name = {e['reference']['source-name']: e for e in entries}
    assert (by_name[known.name]['safe_to_manage'],
            by_name[known.name]['reason_not_safe']) == (False, 'already managed')
    assert by_name[known.name]['cinder_id'] == known.id
    assert (by_name['free-one']['safe_to_manage'], by_name['free-one']['size']) == (True, 2)
    assert (by_name['busy-one']['safe_to_manage'], by_name['busy-one']['reason_not_safe'],
            by_name['busy-one']['size']) == (False, 'attached', 1)


def test_setup_reads_the_token_file_and_builds_a_failover_client(driver, token_file):
    driver.do_setup(None)
    client = driver._client
    assert isinstance(client, api_client.ControlClient)
    assert client.endpoints == ['http://127.0.0.1:8765']
    assert client._token == 's3cret-token-of-the-vpool'


def test_setup_without_the_token_file_says_which_file(driver, token_file):
    token_file.unlink()
    with pytest.raises(driver_mod.OVSEdgeDriverError, match=str(token_file)):
        driver.do_setup(None)


def test_setup_verifies_the_routers_with_the_configured_ca(driver, tmp_path):
    ca = certificates.CertificateAuthority(tmp_path / 'ca').create()
    cfg.CONF.set_override('ovs_ssl_ca_file', ca.cert_file, group='backend_defaults')
    try:
        driver.do_setup(None)
    finally:
        cfg.CONF.clear_override('ovs_ssl_ca_file', group='backend_defaults')
    assert driver._client.tls.requests_verify == ca.cert_file


def test_setup_with_an_unreadable_ca_says_which_file(driver, tmp_path):
    missing = str(tmp_path / 'ca.pem')
    cfg.CONF.set_override('ovs_ssl_ca_file', missing, group='backend_defaults')
    try:
        with pytest.raises(driver_mod.OVSEdgeDriverError,
                           match='cannot read ca_file %s' % missing):
            driver.do_setup(None)
    finally:
        cfg.CONF.clear_override('ovs_ssl_ca_file', group='backend_defaults')


def test_setup_leaves_the_environment_alone(driver, monkeypatch):
    import os
    before = dict(os.environ)
    driver.do_setup(None)
    assert dict(os.environ) == before


def test_the_driver_lists_its_options():
    assert driver_mod.OVSEdgeDriver.get_driver_options() == driver_mod.ovs_opts
    assert {o.name for o in driver_mod.ovs_opts} == {
        'ovs_router_endpoints', 'ovs_api_token_file', 'ovs_vpool', 'ovs_api_timeout',
        'ovs_api_connect_timeout', 'ovs_ssl_ca_file', 'ovs_ssl_cert_file', 'ovs_ssl_key_file'}


def marked(message):
    return '«%s»' % message


@pytest.mark.parametrize('method, args, call, message', FAILING,
                         ids=['%s:%s' % (f[0], f[2]) for f in FAILING])
@pytest.mark.parametrize('error', [api_errors.Unavailable, api_errors.Unauthorized])
def test_error_messages_are_translatable(driver, objects, monkeypatch, method, args, call,
                                         message, error):
    # cinder.i18n._ marks what it translates: both the driver's sentence and
    # the operation it names went through it.
    monkeypatch.setattr(driver_mod, '_', marked)
    driver._client.failures[call] = error('%s failed' % call)
    with pytest.raises(driver_mod.OVSEdgeDriverError) as raised:
        getattr(driver, method)(*arguments(args, objects))
    assert '«cannot «%s' % message in str(raised.value)


@pytest.mark.parametrize('reference, client_failure, translated', [
    ({}, None, '«source-name is required»'),
    ({'source-name': 'legacy'}, api_errors.NotFound('no volume legacy'),
     '«no volume legacy in vPool default»'),
])
def test_manage_errors_are_translatable(driver, objects, monkeypatch, reference,
                                        client_failure, translated):
    monkeypatch.setattr(driver_mod, '_', marked)
    if client_failure:
        driver._client.failures['volume'] = client_failure
    with pytest.raises(exception.ManageExistingInvalidReference) as raised:
        driver.manage_existing(objects['volume'], reference)
    assert translated in str(raised.value)


def test_setup_errors_are_translatable(driver, token_file, monkeypatch):
    monkeypatch.setattr(driver_mod, '_', marked)
    token_file.unlink()
    with pytest.raises(driver_mod.OVSEdgeDriverError) as raised:
        driver.do_setup(None)
    assert '«no credential for the routers: ' in str(raised.value)

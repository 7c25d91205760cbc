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

"""OVSEdgeConnector against a fake edge: the edge's control server
(ovs_cinder/edge/control.py) on a real unix socket, answering from a table
instead of attaching volumes, so every entry point and error path of the
connector runs in seconds (tests/functional/edge/test_connector.py runs it
against a live edge)."""

import logging
import os

from os_brick import exception as brick_exception
from os_brick import privileged as brick_privileged
from os_brick import utils as brick_utils
from os_brick.initiator import connector as brick_connector
from oslo_config import cfg
import pytest

from ovs_cinder.brick import connector as ovs_connector
from ovs_cinder.edge import control
from ovs_daemon.api import errors as api_errors
from tests.unit.edge.test_control import ServerThread

VOLUME = {'vpool': 'default', 'volume': 'volume-1', 'token': 'T' * 24}


class FakeEdge:
    """The edge's control operations over an in-memory attachment table;
    ``failures`` maps an op to the error the edge answers it with."""

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.attached = {}
        self.failures = {}
        self.requests = []

    async def handle(self, request):
        self.requests.append(request)
        op = request['op']
        if op in self.failures:
            raise self.failures[op]
        return getattr(self, op)(request)

    def _socket(self, request):
        return '%s/volumes/%s/%s.sock' % (self.run_dir, request['vpool'], request['volume'])

    def attach(self, request):
        entry = {'volume': request['volume'], 'vpool': request['vpool'],
                 'socket': self._socket(request), 'state': 'connected', 'size': 1 << 30,
                 'router': 'r1', 'epoch': 1}
        self.attached[request['vpool'], request['volume']] = entry
        return dict(entry, uri='nbd+unix:///%s?socket=%s' % (request['volume'],
                                                           entry['socket']))

    def detach(self, request):
        return {'attached': self.attached.pop((request['vpool'], request['volume']),
                                              None) is not None}

    def list(self, request):
        return {'volumes': list(self.attached.values())}

    def refresh(self, request):
        return {'size': 2 << 30}

    def status(self, request):
        return {'host': 'hv1', 'site': 'a', 'volumes': len(self.attached)}


@pytest.fixture
def edge(tmp_path):
    fake = FakeEdge(str(tmp_path))
    path = str(tmp_path / 'control.sock')
    server = ServerThread(path, fake.handle)
    cfg.CONF.set_override('control_socket', path, group='ovs_edge')
    try:
        yield fake
    finally:
        cfg.CONF.clear_override('control_socket', group='ovs_edge')
        cfg.CONF.clear_override('site', group='ovs_edge')
        server.stop()


@pytest.fixture
def connector(edge):
    ovs_connector.register()
    return brick_connector.InitiatorConnector.factory('OVS_EDGE', None)


@pytest.fixture
def no_edge(tmp_path):
    cfg.CONF.set_override('control_socket', str(tmp_path / 'none.sock'), group='ovs_edge')
    ovs_connector.register()
    try:
        yield brick_connector.InitiatorConnector.factory('OVS_EDGE', None)
    finally:
        cfg.CONF.clear_override('control_socket', group='ovs_edge')
        cfg.CONF.clear_override('site', group='ovs_edge')


def test_register_makes_the_factory_build_it_and_properties_ask_it(connector):
    # os-brick's get_connector_properties asks each class of this list.
    assert isinstance(connector, ovs_connector.OVSEdgeConnector)
    assert ovs_connector.CLASS_PATH in brick_connector.unix_connector_list
    assert connector.edge.path == cfg.CONF.ovs_edge.control_socket


@pytest.mark.parametrize('site_option, edge_up, site', [
    (None, True, 'a'),        # the edge tells its site
    ('b', True, 'b'),         # the option overrides it
    ('b', False, 'b'),        # and is what is known while the edge is down
    (None, False, None),      # nothing known: no site property
])
def test_connector_properties(edge, tmp_path, site_option, edge_up, site):
    if site_option:
        cfg.CONF.set_override('site', site_option, group='ovs_edge')
    if not edge_up:
        cfg.CONF.set_override('control_socket', str(tmp_path / 'none.sock'), group='ovs_edge')
    properties = ovs_connector.OVSEdgeConnector.get_connector_properties(None)
    assert properties.get('ovs_edge_site') == site
    assert properties['ovs_edge_socket'] == cfg.CONF.ovs_edge.control_socket


def test_connect_returns_the_edges_socket_and_uri(connector, edge):
    device = connector.connect_volume(dict(VOLUME))
    assert device == {'type': 'nbd', 'path': edge._socket(VOLUME),
                      'uri': 'nbd+unix:///volume-1?socket=%s' % edge._socket(VOLUME),
                      'volume': 'volume-1', 'vpool': 'default'}
    assert edge.requests == [{'op': 'attach', 'volume': 'volume-1', 'vpool': 'default',
                              'token': VOLUME['token']}]
    assert connector.get_volume_paths(VOLUME) == [device['path']]
    assert connector.get_all_available_volumes() == [device['path']]
    assert connector.check_valid_device(device['path'])
    assert not connector.check_valid_device('/elsewhere.sock')
    assert connector.get_search_path() is None


def test_a_routers_list_from_an_older_driver_is_not_passed_on(connector, edge):
    # The edge calls only the routers of its own configuration.
    routers = [{'id': 'r9', 'site': 'a', 'api': 'http://elsewhere', 'nbd': 'elsewhere:1'}]
    connector.connect_volume(dict(VOLUME, routers=routers))
    assert [r for r in edge.requests if 'routers' in r] == []


def test_the_vpool_defaults_to_default(connector, edge):
    properties = {k: v for k, v in VOLUME.items() if k != 'vpool'}
    assert connector.connect_volume(properties)['vpool'] == 'default'


@pytest.mark.parametrize('properties, message', [
    ({k: v for k, v in VOLUME.items() if k != 'token'}, 'lack \'token\''),
    ({k: v for k, v in VOLUME.items() if k != 'volume'}, 'name no volume'),
    (None, 'name no volume'),
])
def test_connect_with_incomplete_properties_fails_clearly(connector, edge, properties,
                                                          message):
    with pytest.raises(ovs_connector.OVSEdgeError, match=message):
        connector.connect_volume(properties)
    assert [r for r in edge.requests if r['op'] == 'attach'] == []


@pytest.mark.parametrize('error', [control.Refused('token revoked'),
                                   api_errors.Unavailable('no router answers'),
                                   api_errors.NotFound('no volume volume-1'),
                                   api_errors.BadRequest('bad routers')])
def test_an_edge_error_fails_connect_with_its_type(connector, edge, error):
    edge.failures['attach'] = error
    with pytest.raises(ovs_connector.OVSEdgeError,
                       match='cannot attach volume-1: %s: %s' % (error.type, error.message)):
        connector.connect_volume(dict(VOLUME))


def test_disconnect_detaches_and_succeeds_when_nothing_is_attached(connector, edge):
    connector.connect_volume(dict(VOLUME))
    connector.disconnect_volume(VOLUME, None)
    assert edge.attached == {}
    connector.disconnect_volume(VOLUME, None)
    assert [r['op'] for r in edge.requests] == ['attach', 'detach', 'detach']
    assert connector.get_volume_paths(VOLUME) == []


@pytest.mark.parametrize('force, ignore_errors, raises', [
    (False, False, True),
    (True, False, False),
    (False, True, False),
])
def test_a_failed_detach_raises_unless_forced_or_ignored(connector, edge, force,
                                                         ignore_errors, raises):
    edge.failures['detach'] = api_errors.BadRequest('cannot detach now')
    if raises:
        with pytest.raises(ovs_connector.OVSEdgeError, match='cannot detach volume-1'):
            connector.disconnect_volume(VOLUME, None, force=force,
                                        ignore_errors=ignore_errors)
    else:
        connector.disconnect_volume(VOLUME, None, force=force, ignore_errors=ignore_errors)


def test_extend_returns_the_size_the_edge_refreshed(connector, edge):
    assert connector.extend_volume(VOLUME) == 2 << 30
    edge.failures['refresh'] = api_errors.NotFound('not attached here')
    with pytest.raises(ovs_connector.OVSEdgeError, match='cannot extend volume-1'):
        connector.extend_volume(VOLUME)


def test_without_an_edge(no_edge):
    with pytest.raises(brick_exception.BrickException, match='no edge listens'):
        no_edge.connect_volume(dict(VOLUME))
    no_edge.disconnect_volume(VOLUME, None)
    with pytest.raises(ovs_connector.OVSEdgeError, match='cannot extend'):
        no_edge.extend_volume(VOLUME)
    assert no_edge.get_volume_paths(VOLUME) == []
    assert no_edge.get_all_available_volumes() == []
    assert not no_edge.check_valid_device('/run/ovs-edge/volumes/default/volume-1.sock')


# os-brick's decorators on the entry points, seen through what they do.

@pytest.fixture
def link_dir(tmp_path, monkeypatch):
    """Encrypted volumes' links in tmp_path instead of /dev/disk/by-id, made
    in this process (os-brick's privsep helpers run in-process)."""
    links = tmp_path / 'links'
    links.mkdir()
    monkeypatch.setattr(brick_utils, 'CUSTOM_LINK_PREFIX', str(links / 'os-brick'))
    brick_privileged.default.set_client_mode(False)
    try:
        yield links
    finally:
        brick_privileged.default.set_client_mode(True)


def test_an_encrypted_volume_gets_a_link_of_its_own_removed_at_disconnect(
        connector, edge, link_dir):
    # connect_volume_prepare_result: the encryptor replaces what connect
    # returns, so it gets a link to the edge's socket, never the socket itself.
    properties = dict(VOLUME, encrypted=True)
    device = connector.connect_volume(properties)
    socket = edge._socket(VOLUME)
    link = str(link_dir / 'os-brick') + socket.replace('/', '+')
    assert device['path'] == link
    assert os.readlink(link) == os.path.realpath(socket)
    # connect_volume_undo_prepare_result: extend and disconnect get the path
    # connect made; disconnect removes the link.
    assert connector.extend_volume(dict(properties, device_path=link)) == 2 << 30
    connector.disconnect_volume(properties, device)
    assert not os.path.lexists(link)
    assert edge.attached == {}


def test_an_unencrypted_volume_is_the_edges_socket(connector, edge, link_dir):
    assert connector.connect_volume(dict(VOLUME))['path'] == edge._socket(VOLUME)
    assert list(link_dir.iterdir()) == []


ENTRY_POINTS = [('connect_volume', (VOLUME,), 'attach'),
                ('disconnect_volume', (VOLUME, None), 'detach'),
                ('extend_volume', (VOLUME,), 'refresh')]


@pytest.mark.parametrize('name, args, op', ENTRY_POINTS, ids=[e[0] for e in ENTRY_POINTS])
def test_entry_points_are_traced_at_debug_without_the_token(connector, edge, caplog, name,
                                                             args, op):
    caplog.set_level(logging.DEBUG, logger=ovs_connector.__name__)
    getattr(connector, name)(*args)
    edge.failures[op] = api_errors.BadRequest('refused')
    with pytest.raises(ovs_connector.OVSEdgeError):
        getattr(connector, name)(*args)
    traced = [(r.levelno, r.getMessage()) for r in caplog.records
              if r.getMessage().startswith(('==> %s:' % name, '<== %s:' % name))]
    assert [(level, message.split(' ')[2]) for level, message in traced] == [
        (logging.DEBUG, 'call'), (logging.DEBUG, 'return'),
        (logging.DEBUG, 'call'), (logging.DEBUG, 'exception')]
    assert 'volume-1' in traced[0][1]
    assert all(VOLUME['token'] not in message for _, message in traced)


# Exception messages go through os-brick's translation function.

def marked(message):
    return '«%s»' % message


TRANSLATED = [
    ('connect_volume', dict(VOLUME), ('attach', api_errors.BadRequest('no')),
     '«cannot attach volume-1: '),
    ('connect_volume', {'volume': 'volume-1'}, None, '«connection properties lack '),
    ('connect_volume', {}, None, '«connection properties name no volume»'),
    ('disconnect_volume', dict(VOLUME), ('detach', api_errors.BadRequest('no')),
     '«cannot detach volume-1: '),
    ('extend_volume', dict(VOLUME), ('refresh', api_errors.NotFound('no')),
     '«cannot extend volume-1: '),
]


@pytest.mark.parametrize('call, properties, failure, translated', TRANSLATED,
                         ids=[t[3].strip('«»: ') for t in TRANSLATED])
def test_error_messages_are_translatable(connector, edge, monkeypatch, call, properties,
                                         failure, translated):
    monkeypatch.setattr(ovs_connector, '_', marked)
    if failure:
        edge.failures[failure[0]] = failure[1]
    args = (properties, None) if call == 'disconnect_volume' else (properties,)
    with pytest.raises(ovs_connector.OVSEdgeError) as raised:
        getattr(connector, call)(*args)
    assert translated in str(raised.value)

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

"""The router's control API (aiohttp); the contract is docs/control-api.md.

Calls that need the volume's owner run here when this router serves the
volume and are forwarded to the owner otherwise. A volume without a live
owner (none recorded, or its owner has no ZooKeeper session) is taken here
first. A forwarded call is never forwarded again: if the volume moved on
meanwhile the caller gets 503 and retries.
"""

import json
import secrets

from aiohttp import web
from oslo_log import log as logging

from ovs_daemon.api import errors
from ovs_daemon.backends import base as backends
from ovs_daemon.engine import errors as engine_errors
from ovs_daemon.router import ownership as ownership_mod
from ovs_daemon.router import peers as peers_mod
from ovs_daemon.router import placement
from ovs_daemon.router import registry as registry_mod
from ovs_daemon.router import session_credentials

LOG = logging.getLogger(__name__)
MAX_BODY = 64 << 10
CLONE_SNAPSHOT = 'clone-%s'

# Errors of the layers below, as API errors. The first match wins.
_STATUS_OF = (
    (errors.ApiError, None),
    (registry_mod.VolumeRecordNotFound, 404),
    (registry_mod.RouterNotFound, 404),
    (registry_mod.VolumeRecordExists, 409),
    (registry_mod.Conflict, 409),
    (registry_mod.RegistryUnavailable, 503),
    (registry_mod.RegistryError, 400),
    (engine_errors.VolumeNotFound, 404),
    (engine_errors.SnapshotNotFound, 404),
    (engine_errors.VolumeExists, 409),
    (engine_errors.SnapshotExists, 409),
    (engine_errors.Halted, 409),
    (engine_errors.OutOfRange, 400),
    (engine_errors.InvalidRequest, 400),
    (backends.InvalidName, 400),
    (backends.Fenced, 409),
    (backends.NotFound, 404),
    (backends.BackendError, 503),
)


# Seconds ``ovs-admin drain`` gives a router whose own drain_timeout is 0.
DEFAULT_DRAIN_TIMEOUT = 30.0


def error_response(status, error_type, message):
    return web.json_response(
        {'error': {'code': status, 'type': error_type, 'message': message}}, status=status)


def _status_of(exc):
    for kind, status in _STATUS_OF:
        if isinstance(exc, kind):
            return status or exc.status
    return None


@web.middleware
async def _errors_as_json(request, handler):
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, type(exc).__name__, exc.reason)
    except Exception as exc:
        status = _status_of(exc)
        if status is None:
            LOG.exception('%s %s failed', request.method, request.path)
            return error_response(500, 'InternalError', 'internal error: %s' % exc)
        error_type = exc.type if isinstance(exc, errors.ApiError) else type(exc).__name__
        if status >= 500:
            LOG.warning('%s %s: %s', request.method, request.path, exc)
        return error_response(status, error_type, str(exc))


ROLE_ADMIN = 'admin'
ROLE_EDGE = 'edge'
# What the edge credential may call: enough to find a volume's router and
# take a volume over after a failover, with a current attachment token.
EDGE_CALLS = frozenset([('GET', '/v1/routers'), ('GET', '/v1/volumes/{name}/locate'),
                        ('POST', '/v1/volumes/{name}/acquire')])


def _role_check(admin_tokens, edge_tokens):
    """Authenticate every call: the admin credential may call anything, the
    edge credential only :data:`EDGE_CALLS` (else 403)."""

    @web.middleware
    async def check(request, handler):
        scheme, _, given = request.headers.get('Authorization', '').partition(' ')
        given = given.strip().encode()
        role = None
        if scheme.lower() == 'bearer' and given:
            if admin_tokens.matches(given):
                role = ROLE_ADMIN
            elif edge_tokens is not None and edge_tokens.matches(given):
                role = ROLE_EDGE
        if role is None:
            return error_response(401, 'Unauthorized', 'a valid token is required')
        if role == ROLE_EDGE and (request.method, _route_of(request)) not in EDGE_CALLS:
            return error_response(403, 'Forbidden', 'the edge credential may only list the '
                                  'routers, locate volumes and acquire them in failover mode')
        request['role'] = role
        return await handler(request)
    return check


def _route_of(request):
    route = request.match_info.route
    resource = getattr(route, 'resource', None)
    return resource.canonical if resource is not None else None


# -- request parsing ------------------------------------------------------------

async def _body(request):
    if request.content_length and request.content_length > MAX_BODY:
        raise errors.BadRequest('request body larger than %d bytes' % MAX_BODY)
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        # RecursionError: nesting deeper than the decoder's stack.
        raise errors.BadRequest('malformed JSON: %s' % exc) from None
    if not isinstance(body, dict):
        raise errors.BadRequest('the request body must be a JSON object')
    return body


def _field(body, name, kind, required=True):
    value = body.get(name)
    if value is None:
        if required:
            raise errors.BadRequest('field %r is required' % name)
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise errors.BadRequest('field %r must be a %s' % (name, kind.__name__))
    return value


def _flag(body, name):
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise errors.BadRequest('field %r must be true or false' % name)
    return value


def _name(kind, value):
    try:
        return backends.check_name(kind, value)
    except backends.InvalidName as exc:
        raise errors.BadRequest(str(exc)) from None


def _volume_name(request):
    return _name('volume', request.match_info['name'])


def _public(record):
    """A record as the API shows it: attachment tokens are secrets."""
    shown = dict(record)
    shown['attachments'] = sorted(record.get('attachments', {}))
    return shown


class ControlAPI:

    def __init__(self, service):
        self.service = service
        self.own = service.ownership
        self.registry = service.registry

    @property
    def router_id(self):
        return self.service.router_id

    def application(self, admin_tokens, edge_tokens=None):
        app = web.Application(middlewares=[_errors_as_json,
                                           _role_check(admin_tokens, edge_tokens)],
                              client_max_size=MAX_BODY)
        get, post, delete = web.get, web.post, web.delete
        volume = '/v1/volumes/{name}'
        app.add_routes([
            get('/v1/health', self.health),
            get('/metrics', self.metrics),
            get('/v1/routers', self.routers),
            post('/v1/routers/{router}/drain', self.drain),
            post('/v1/routers/{router}/undrain', self.undrain),
            get('/v1/stats', self.stats),
            get('/v1/space', self.space),
            get('/v1/volumes', self.list_volumes),
            post('/v1/volumes', self.create_volume),
            get(volume, self.show_volume),
            delete(volume, self.delete_volume),
            post(volume + '/extend', self.extend_volume),
            get(volume + '/stats', self.volume_stats),
            post(volume + '/collect', self.collect_volume),
            get(volume + '/snapshots', self.list_snapshots),
            post(volume + '/snapshots', self.create_snapshot),
            delete(volume + '/snapshots/{snapshot}', self.delete_snapshot),
            post(volume + '/revert', self.revert),
            get(volume + '/locate', self.locate),
            post(volume + '/acquire', self.acquire),
            post(volume + '/migrate', self.migrate),
            post(volume + '/handover', self.handover),
            post(volume + '/credentials', self.create_credential),
            post(volume + '/attachments', self.create_attachment),
            delete(volume + '/attachments/{host}', self.delete_attachment),
            delete(volume + '/attachments', self.delete_attachments),
        ])
        return app

    # -- routing to the owner ------------------------------------------------

    async def _on_owner(self, request, name, local_call, body=None):
        """Run ``local_call(served)`` where the volume is served: here, or
        forwarded to its owner."""
        served = self.own.served(name)
        if served is None:
            api = await self._owner_api(name, forwarded=peers_mod.FORWARDED_BY in request.headers)
            if api is not None:
                return await self._forward(request, api, body)
            served = self.own.served(name)
            if served is None:
                raise errors.Unavailable('volume %s could not be opened here; retry' % name)
        return await local_call(served)

    async def _owner_api(self, name, forwarded):
        """The API address of the volume's live owner, or None once this
        router has taken it (no live owner) or serves it."""
        api = await self._live_owner_api(name, forwarded)
        if api is None:
            await self.own.acquire(name, ownership_mod.MODE_NORMAL)
        return api

    async def _live_owner_api(self, name, forwarded):
        """The API address of the volume's owner if that is another live
        router, else None."""
        record, _ = await self.own.blocking(self.registry.volume, name)
        owner = record['owner']
        if owner is None or owner == self.router_id:
            return None
        try:
            info = await self.own.blocking(self.registry.router, owner)
        except registry_mod.RouterNotFound:
            return None
        if forwarded:
            raise errors.Unavailable('volume %s is owned by %s now; retry' % (name, owner))
        return info['api']

    async def _forward(self, request, api, body):
        status, answer = await self.service.peers.call(
            api, request.method, request.rel_url.path, body, query=request.rel_url.query)
        if isinstance(answer, bytes):
            return web.Response(body=answer, status=status)
        return web.json_response(answer, status=status)

    async def _run(self, fn, *args):
        return await self.own.blocking(fn, *args)

    # -- router and vPool --------------------------------------------------------

    async def health(self, request):
        answer = {
            'router': self.router_id,
            'site': self.service.site,
            'vpool': self.service.vpool,
            'zookeeper': self.own.session_state.lower(),
            'served_count': self.own.served_count(),
            'halted': self.own.halted(),
        }
        # Peers check this before every handover and ask it at every
        # placement: the names of 1,000 volumes each time would make moving
        # or creating N volumes cost N^2.
        if request.query.get('served') != 'count':
            answer['served'] = self.own.served_names()
        return web.json_response(answer)

    async def metrics(self, request):
        body, content_type = self.service.metrics.exposition()
        return web.Response(body=body, headers={'Content-Type': content_type})

    async def routers(self, request):
        self.own.require_session('list the routers')
        routers = await self._run(self.registry.routers)
        drained = await self._run(self.registry.drained_routers)
        return web.json_response({'routers': [dict(routers[k], drained=k in drained)
                                              for k in sorted(routers)]})

    async def drain(self, request):
        """Mark the router drained and move its volumes to peers (on it)."""
        router = _name('router', request.match_info['router'])
        body = await _body(request)
        timeout = body.get('timeout')
        if timeout is None:
            timeout = self.service.conf.router.drain_timeout or DEFAULT_DRAIN_TIMEOUT
        elif (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
              or timeout <= 0):
            raise errors.BadRequest('field \'timeout\' must be a positive number of seconds')
        await self._run(self.registry.set_drained, router, True)
        if router == self.router_id:
            answer = await self.service.drainer.drain(timeout)
            return web.json_response(dict(answer, router=router, running=True))
        answer = await self._on_router(request, router, {'timeout': timeout}, timeout + 5)
        if answer is None:
            return web.json_response({'router': router, 'running': False, 'moved': {},
                                      'left': {}})
        return answer

    async def undrain(self, request):
        router = _name('router', request.match_info['router'])
        await self._run(self.registry.set_drained, router, False)
        if router == self.router_id:
            self.own.draining = False
            return web.json_response({'router': router, 'running': True})
        answer = await self._on_router(request, router, {}, None)
        return answer or web.json_response({'router': router, 'running': False})

    async def _on_router(self, request, router, body, timeout):
        """Forward a router call to ``router``; None if it is not running."""
        if peers_mod.FORWARDED_BY in request.headers:
            raise errors.Unavailable('router %s is not this one; retry' % router)
        try:
            info = await self._run(self.registry.router, router)
        except registry_mod.RouterNotFound:
            return None
        status, answer = await self.service.peers.call(
            info['api'], request.method, request.rel_url.path, body, timeout=timeout)
        return web.json_response(answer, status=status)

    async def stats(self, request):
        usage = await self._run(self.service.store.backend.usage)
        records = await self._run(self.registry.volumes)
        usage['provisioned_bytes'] = sum(r['size'] for r in records.values())
        usage['volumes'] = len(records)
        return web.json_response(usage)

    async def space(self, request):
        """Stored and live bytes of each volume served here."""
        volumes = {}
        for name in self.own.served_names():
            served = self.own.served(name)
            if served is not None:
                stats = served.volume.stats()
                volumes[name] = {k: stats[k] for k in ('stored_bytes', 'live_bytes')}
        return web.json_response({'volumes': volumes})

    # -- volumes ------------------------------------------------------------

    async def list_volumes(self, request):
        records = await self._run(self.registry.volumes)
        return web.json_response({'volumes': [_public(records[k]) for k in sorted(records)]})

    async def show_volume(self, request):
        record, _ = await self._run(self.registry.volume, _volume_name(request))
        return web.json_response(_public(record))

    async def create_volume(self, request):
        body = await _body(request)
        name = _name('volume', _field(body, 'name', str))
        size = _field(body, 'size', int, required=False)
        router = _field(body, 'router', str, required=False)
        source = _field(body, 'source', dict, required=False)
        multiattach = _flag(body, 'multiattach')
        parent = await self._clone_source(request, name, source) if source else None
        if size is None:
            if parent is None:
                raise errors.BadRequest('field %r is required' % 'size')
            size = await self._run(self.service.store.snapshot_size, parent['volume'],
                                   parent['snapshot'])
        info = None
        if router is None:
            router, info = await placement.least_loaded_router(
                self.own, self.registry, self.service.peers, self._run)
        if router != self.router_id:
            if peers_mod.FORWARDED_BY in request.headers:
                raise errors.Conflict('placement on %s was forwarded to %s' % (
                    router, self.router_id))
            # A router gone since placement read its info fails the
            # forward, as it would right after a second read.
            if info is None:
                info = await self._run(self.registry.router, router)
            body = {'name': name, 'size': size, 'router': router,
                    'source': parent, 'multiattach': multiattach}
            status, answer = await self.service.peers.call(info['api'], 'POST', '/v1/volumes',
                                                           body)
            return web.json_response(answer, status=status)
        record = await self.own.create(name, size, parent, multiattach)
        return web.json_response(_public(record), status=201)

    async def _clone_source(self, request, name, source):
        volume = _name('volume', _field(source, 'volume', str))
        snapshot = _field(source, 'snapshot', str, required=False)
        if snapshot is None:
            snapshot = CLONE_SNAPSHOT % name
            await self._snapshot_on_owner(request, volume, snapshot)
        return {'volume': volume, 'snapshot': _name('snapshot', snapshot)}

    async def _snapshot_on_owner(self, request, volume, snapshot):
        served = self.own.served(volume)
        if served is not None:
            return await self._run(served.volume.create_snapshot, snapshot)
        api = await self._owner_api(volume, forwarded=False)
        if api is None:
            return await self._snapshot_on_owner(request, volume, snapshot)
        status, answer = await self.service.peers.call(
            api, 'POST', '/v1/volumes/%s/snapshots' % volume, {'name': snapshot})
        if status != 201:
            error = answer.get('error', {}) if isinstance(answer, dict) else {}
            raise errors.PeerError(status, error.get('type'), error.get('message', str(answer)))

    async def delete_volume(self, request):
        """On the owner if another live router owns the volume; here
        otherwise, without opening it (see Ownership.delete)."""
        name = _volume_name(request)
        if self.own.served(name) is None:
            api = await self._live_owner_api(
                name, forwarded=peers_mod.FORWARDED_BY in request.headers)
            if api is not None:
                return await self._forward(request, api, None)
        await self.own.delete(name)
        return web.Response(status=204)

    async def extend_volume(self, request):
        name = _volume_name(request)
        body = await _body(request)
        size = _field(body, 'size', int)

        async def local(served):
            if size < served.volume.size:
                raise errors.Conflict('volume %s is %d bytes: it can grow, not shrink to %d'
                                      % (name, served.volume.size, size))
            await self._run(served.volume.extend, size)
            record = await self._run(self.registry.set_size, name, size)
            return web.json_response(_public(record))
        return await self._on_owner(request, name, local, body)

    async def volume_stats(self, request):
        async def local(served):
            return web.json_response(served.volume.stats())
        return await self._on_owner(request, _volume_name(request), local)

    async def collect_volume(self, request):
        async def local(served):
            return web.json_response(await self.service.collect_volume(served))
        return await self._on_owner(request, _volume_name(request), local)

    # -- snapshots ----------------------------------------------------------

    async def list_snapshots(self, request):
        async def local(served):
            snapshots = dict(served.volume.snapshots)
            return web.json_response({'snapshots': [
                {'name': k, 'size': v['size'], 'created': v['created']}
                for k, v in sorted(snapshots.items())]})
        return await self._on_owner(request, _volume_name(request), local)

    async def create_snapshot(self, request):
        body = await _body(request)
        snapshot = _name('snapshot', _field(body, 'name', str))

        async def local(served):
            await self._run(served.volume.create_snapshot, snapshot)
            info = served.volume.snapshots[snapshot]
            return web.json_response({'name': snapshot, 'size': info['size'],
                                      'created': info['created']}, status=201)
        return await self._on_owner(request, _volume_name(request), local, body)

    async def delete_snapshot(self, request):
        snapshot = _name('snapshot', request.match_info['snapshot'])

        async def local(served):
            await self._run(served.volume.delete_snapshot, snapshot)
            return web.Response(status=204)
        return await self._on_owner(request, _volume_name(request), local)

    async def revert(self, request):
        name = _volume_name(request)
        body = await _body(request)
        snapshot = _name('snapshot', _field(body, 'snapshot', str))

        async def local(served):
            await self._run(served.volume.revert, snapshot)
            size = served.volume.size
            record, _ = await self._run(self.registry.volume, name)
            if record['size'] != size:
                record = await self._run(self.registry.set_size, name, size, True)
            return web.json_response(_public(record))
        return await self._on_owner(request, name, local, body)

    # -- ownership ----------------------------------------------------------

    async def _location(self, record):
        location = {'volume': record['name'], 'owner': record['owner'],
                    'epoch': record['epoch'], 'size': record['size'], 'alive': False,
                    'router': None}
        if record['owner'] is not None:
            try:
                location['router'] = await self._run(self.registry.router, record['owner'])
                location['alive'] = True
            except registry_mod.RouterNotFound:
                pass
        return location

    async def locate(self, request):
        name = _volume_name(request)
        self.own.require_session('locate volume %s' % name)
        record, _ = await self._run(self.registry.volume, name)
        return web.json_response(await self._location(record))

    async def acquire(self, request):
        body = await _body(request)
        mode = _field(body, 'mode', str, required=False) or ownership_mod.MODE_NORMAL
        attachment = _field(body, 'attachment', str, required=False)
        if request['role'] == ROLE_EDGE and (mode != ownership_mod.MODE_FAILOVER
                                             or not attachment):
            raise errors.Forbidden('the edge credential acquires only in failover mode, '
                                   'with a current attachment token')
        name = _volume_name(request)
        self.own.require_session('acquire volume %s' % name)
        record = await self.own.acquire(name, mode, attachment)
        return web.json_response(await self._location(record))

    async def migrate(self, request):
        name = _volume_name(request)
        body = await _body(request)
        target = _name('router', _field(body, 'router', str))
        if target == self.router_id:
            record = await self.own.acquire(name, ownership_mod.MODE_NORMAL)
            return web.json_response(await self._location(record))
        info = await self._run(self.registry.router, target)
        try:
            status, answer = await self.service.peers.call(
                info['api'], 'POST', '/v1/volumes/%s/migrate' % name, {'router': target})
        except errors.PeerUnreachable as exc:
            raise errors.MigrationFailed('target router %s did not answer: %s'
                                         % (target, exc.__cause__ or exc)) from exc
        if status == 503:
            # Every router would ask the same target again: not worth a retry.
            error = answer.get('error', {}) if isinstance(answer, dict) else {}
            raise errors.MigrationFailed('target router %s cannot take it: %s'
                                         % (target, error.get('message', answer)))
        return web.json_response(answer, status=status)

    async def handover(self, request):
        body = await _body(request)
        to = _name('router', _field(body, 'to', str))
        epoch = _field(body, 'epoch', int)
        answer = await self.own.handover(_volume_name(request), to, epoch)
        return web.json_response(answer)

    # -- credentials ----------------------------------------------------------

    async def create_credential(self, request):
        """A short-lived credential for an operator's or a tool's NBD sessions."""
        name = _volume_name(request)
        body = await _body(request)
        ttl = _field(body, 'ttl', int, required=False) or session_credentials.DEFAULT_TTL
        if not 0 < ttl <= session_credentials.MAX_TTL:
            raise errors.BadRequest('field %r must be 1 to %d seconds'
                                    % ('ttl', session_credentials.MAX_TTL))
        await self._run(self.registry.volume, name)
        token, expires = self.service.session_credentials.issue(name, ttl)
        return web.json_response({'volume': name, 'token': token, 'expires': expires},
                                 status=201)

    # -- attachments ----------------------------------------------------------

    async def create_attachment(self, request):
        name = _volume_name(request)
        body = await _body(request)
        host = _field(body, 'host', str)
        if not host.strip():
            raise errors.BadRequest('field %r must not be empty' % 'host')
        multiattach = body.get('multiattach')
        if multiattach is not None:
            multiattach = _flag(body, 'multiattach')
        record = await self._run(self.registry.set_attachment, name, host,
                                 secrets.token_urlsafe(24), multiattach)
        return web.json_response({'host': host, 'token': record['attachments'][host]},
                                 status=201)

    async def delete_attachment(self, request):
        await self._run(self.registry.remove_attachment, _volume_name(request),
                        request.match_info['host'])
        return web.Response(status=204)

    async def delete_attachments(self, request):
        await self._run(self.registry.clear_attachments, _volume_name(request))
        return web.Response(status=204)

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

"""The synchronous client of the routers' control API (docs/control-api.md).

Used by ``ovs-admin``, the edge (in worker threads) and the Cinder driver.
It fails over between endpoints: a router that cannot be connected to, or
answers 503, is skipped for the next one, and the last one that worked is
tried first next time. A call whose request may have reached a router
(a read timeout) is not sent again elsewhere unless it is a read-only call:
its outcome is unknown and :class:`~ovs_daemon.api.errors.Unavailable` says so.
"""

import re

import requests

from ovs_daemon import tls as tls_mod
from ovs_daemon.api import errors

_SSL_REASON = re.compile(r'SSL[A-Za-z]*Error\((?:\d+, )?[\'"](.+?)[\'"]\)')


class ControlClient:

    def __init__(self, endpoints, token, timeout=30.0, connect_timeout=2.0, tls=None):
        """``tls``: a :class:`~ovs_daemon.tls.ClientTLS` for https:// endpoints
        (the CA that signed the routers' certificates, a client certificate);
        None: the system's CAs."""
        if isinstance(endpoints, str):
            endpoints = [endpoints]
        self.endpoints = [e.rstrip('/') for e in endpoints]
        if not self.endpoints:
            raise ValueError('at least one control API endpoint is needed')
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._token = token
        self._first = 0
        self.tls = tls or tls_mod.ClientTLS()
        self._session = requests.Session()

    def __repr__(self):
        return 'ControlClient(%r)' % (self.endpoints,)

    def for_endpoint(self, endpoint, timeout=None):
        """A client of one router only (e.g. to ask each router its health)."""
        return ControlClient([endpoint], self._token, timeout or self.timeout,
                             self.connect_timeout, self.tls)

    # -- transport ---------------------------------------------------------------

    def _request(self, method, path, body=None, idempotent=False, raw=False):
        failures = []
        # The types of the 503 answers: NoZooKeeperSession from every router
        # tells that ZooKeeper is away.
        answered = []
        count = len(self.endpoints)
        for attempt in range(count):
            index = (self._first + attempt) % count
            endpoint = self.endpoints[index]
            try:
                answer = self._session.request(
                    method, endpoint + path, json=body,
                    headers={'Authorization': 'Bearer %s' % self._token},
                    timeout=(self.connect_timeout, self.timeout),
                    # Per request: a session's verify gives way to
                    # REQUESTS_CA_BUNDLE from the environment.
                    verify=self.tls.requests_verify, cert=self.tls.requests_cert)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if _reached(exc) and not idempotent:
                    raise errors.Unavailable(
                        '%s %s on %s: the connection failed after the request was sent '
                        '(%s); its outcome is unknown'
                        % (method, path, endpoint, _reason(exc))) from None
                failures.append('%s: %s' % (endpoint, _reason(exc)))
                continue
            if answer.status_code == 503:
                error = _error_of(answer)
                failures.append('%s: %s' % (endpoint, error.message))
                answered.append(error.type)
                continue
            self._first = index
            if answer.status_code >= 400:
                raise _error_of(answer)
            if raw:
                return answer.text
            return answer.json() if answer.content else None
        raise errors.Unavailable('%s %s failed on every router: %s'
                                 % (method, path, '; '.join(failures)),
                                 error_type=_common_type(answered, failures))

    def _get(self, path, raw=False):
        return self._request('GET', path, idempotent=True, raw=raw)

    def _post(self, path, body=None):
        return self._request('POST', path, body or {})

    def _delete(self, path):
        return self._request('DELETE', path)

    # -- calls ----------------------------------------------------------------------

    def health(self):
        return self._get('/v1/health')

    def metrics(self):
        return self._get('/metrics', raw=True)

    def routers(self):
        return self._get('/v1/routers')['routers']

    def stats(self):
        return self._get('/v1/stats')

    def volumes(self):
        return self._get('/v1/volumes')['volumes']

    def volume(self, name):
        return self._get('/v1/volumes/%s' % name)

    def create_volume(self, name, size, router=None, source=None, multiattach=False):
        body = {'name': name, 'size': size}
        if multiattach:
            body['multiattach'] = True
        if router is not None:
            body['router'] = router
        if source is not None:
            body['source'] = source
        return self._post('/v1/volumes', body)

    def delete_volume(self, name):
        self._delete('/v1/volumes/%s' % name)

    def extend_volume(self, name, size):
        return self._post('/v1/volumes/%s/extend' % name, {'size': size})

    def volume_stats(self, name):
        return self._get('/v1/volumes/%s/stats' % name)

    def snapshots(self, name):
        return self._get('/v1/volumes/%s/snapshots' % name)['snapshots']

    def create_snapshot(self, name, snapshot):
        return self._post('/v1/volumes/%s/snapshots' % name, {'name': snapshot})

    def delete_snapshot(self, name, snapshot):
        self._delete('/v1/volumes/%s/snapshots/%s' % (name, snapshot))

    def revert(self, name, snapshot):
        return self._post('/v1/volumes/%s/revert' % name, {'snapshot': snapshot})

    def collect(self, name):
        """One compaction and collection round of the volume, on its owner."""
        return self._post('/v1/volumes/%s/collect' % name)

    def space(self):
        """``{volume: {'stored_bytes', 'live_bytes'}}`` of the volumes this
        router serves."""
        return self._get('/v1/space')['volumes']

    def locate(self, name):
        return self._get('/v1/volumes/%s/locate' % name)

    def acquire(self, name, mode='normal', attachment=None):
        body = {'mode': mode}
        if attachment is not None:
            body['attachment'] = attachment
        return self._post('/v1/volumes/%s/acquire' % name, body)

    def migrate(self, name, router):
        return self._post('/v1/volumes/%s/migrate' % name, {'router': router})

    def drain(self, router, timeout=None):
        """Move every volume off ``router`` and keep placement away from it."""
        return self._post('/v1/routers/%s/drain' % router,
                          {'timeout': timeout} if timeout else {})

    def undrain(self, router):
        return self._post('/v1/routers/%s/undrain' % router)

    def create_credential(self, name, ttl=None):
        """``{"volume", "token", "expires"}``: a short-lived credential for
        NBD sessions of ``name`` (export name ``<name>/<token>``)."""
        return self._post('/v1/volumes/%s/credentials' % name,
                          {} if ttl is None else {'ttl': ttl})

    def create_attachment(self, name, host, multiattach=None):
        body = {'host': host}
        if multiattach is not None:
            body['multiattach'] = multiattach
        return self._post('/v1/volumes/%s/attachments' % name, body)

    def delete_attachment(self, name, host):
        self._delete('/v1/volumes/%s/attachments/%s' % (name, host))

    def delete_attachments(self, name):
        self._delete('/v1/volumes/%s/attachments' % name)


def _common_type(answered, failures):
    """The error type of the 503 answers if every failure was one and they
    all had the same, else None (the type of Unavailable)."""
    if answered and len(answered) == len(failures) and len(set(answered)) == 1:
        return answered[0]
    return None


def _error_of(answer):
    try:
        error = answer.json()['error']
        message, error_type = error['message'], error.get('type')
    except (ValueError, KeyError, TypeError):
        message, error_type = answer.text.strip() or answer.reason, None
    cls = errors.BY_STATUS.get(answer.status_code, errors.ApiError)
    return cls(message, status=answer.status_code, error_type=error_type)


def _reached(exc):
    """Whether the request may have reached the router before it failed."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ReadTimeout):
        return True
    text = str(exc)
    return 'RemoteDisconnected' in text or 'Connection aborted' in text


def _reason(exc):
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        # The router's certificate is not trusted, names another host, or
        # the router wants a client certificate: say which, not "SSLError".
        match = _SSL_REASON.search(text)
        return 'TLS: %s' % (match.group(1) if match else text)
    for marker in ('Connection refused', 'timed out', 'No route to host',
                   'Name or service not known'):
        if marker in text:
            return marker
    return type(exc).__name__

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

"""Short-lived credentials for the NBD sessions of operators and tools.

Guests' sessions present their attachment token. Everything else that
opens a volume on a router (``ovs-admin``, benchmarks, the development
cluster's tools) asks the control API, with the admin credential, for a
credential of one volume (``POST /v1/volumes/<name>/credentials``) and
presents it as the export name's suffix: ``<volume>/<credential>``.

A credential is ``tool.<expiry>.<signature>``: an HMAC of the vPool, the
volume and the expiry (Unix seconds) under a key derived from the admin
token. Every router of the vPool holds the admin tokens, so any of them
checks it without asking ZooKeeper; during a rotation a credential signed
with either token is accepted. It admits sessions until it expires; a
session opened with it is not cut by attachments coming or going.
"""

import hashlib
import hmac
import time

PREFIX = 'tool.'
DEFAULT_TTL = 600
MAX_TTL = 86400
_KEY_PURPOSE = b'ovs-edge nbd session credential'


class SessionCredentials:

    def __init__(self, vpool, admin_tokens, clock=time.time):
        self._vpool = vpool
        self._admin_tokens = admin_tokens
        self._clock = clock

    def issue(self, volume, ttl=DEFAULT_TTL):
        """``(credential, expiry)`` for sessions of ``volume``."""
        expires = int(self._clock()) + int(ttl)
        return (PREFIX + '%d.%s' % (expires, self._sign(self._admin_tokens.current, volume,
                                                       expires)), expires)

    def admits(self, volume, credential):
        """Whether ``credential`` is a current credential of ``volume``."""
        if not credential.startswith(PREFIX):
            return False
        expires, _, signature = credential[len(PREFIX):].partition('.')
        if not expires.isdigit() or int(expires) < self._clock():
            return False
        valid = False
        for token in self._admin_tokens.all:
            valid |= hmac.compare_digest(signature.encode(),
                                         self._sign(token, volume, int(expires)).encode())
        return valid

    def _sign(self, token, volume, expires):
        key = hmac.new(token.encode(), _KEY_PURPOSE, hashlib.sha256).digest()
        message = ('%s/%s/%d' % (self._vpool, volume, expires)).encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

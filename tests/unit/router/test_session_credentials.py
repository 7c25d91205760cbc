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

"""Operators' short-lived NBD credentials: bound to one volume and one
vPool, valid until they expire, checked against every admin token."""

import os

from ovs_daemon.api import token as token_mod
from ovs_daemon.router import session_credentials


class Clock:
    def __init__(self, now=1_000_000):
        self.now = now

    def __call__(self):
        return self.now


def credentials(tmp_path, text='admin\n', vpool='pool', clock=None, name='token'):
    path = tmp_path / name
    path.write_text(text)
    os.chmod(path, 0o600)
    return session_credentials.SessionCredentials(vpool, token_mod.TokenFile(str(path)),
                                                  clock or Clock())


def test_a_credential_admits_sessions_of_its_volume_until_it_expires(tmp_path):
    clock = Clock()
    issuer = credentials(tmp_path, clock=clock)
    token, expires = issuer.issue('v1', ttl=60)

    assert expires == clock.now + 60
    assert issuer.admits('v1', token)
    assert not issuer.admits('v2', token)
    clock.now += 61
    assert not issuer.admits('v1', token)


def test_forged_or_foreign_credentials_are_refused(tmp_path):
    issuer = credentials(tmp_path)
    token, expires = issuer.issue('v1')
    other_vpool = credentials(tmp_path, vpool='other')
    other_key = credentials(tmp_path, text='another admin token\n', name='other')

    assert not other_vpool.admits('v1', token)
    assert not other_key.admits('v1', token)
    assert not issuer.admits('v1', 'tool.%d.%s' % (expires + 3600, token.rsplit('.', 1)[1]))
    for forged in ('', 'tool.', 'tool.x.y', 'tool.%d.' % expires, 'an-attachment-token'):
        assert not issuer.admits('v1', forged)


def test_credentials_signed_with_either_token_of_a_rotation_are_admitted(tmp_path):
    old = credentials(tmp_path, text='old\n', name='old')
    new = credentials(tmp_path, text='new\n', name='new')
    rotating = credentials(tmp_path, text='new\nold\n', name='rotating')

    assert rotating.admits('v1', old.issue('v1')[0])
    assert rotating.admits('v1', new.issue('v1')[0])
    assert not new.admits('v1', old.issue('v1')[0])

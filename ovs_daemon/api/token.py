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

"""Credential files of the control API (docs/operator-guide.md, "Threat model").

A token file holds one token per line. A client sends the first; a router
accepts every line, so a rotation puts the new token in the routers' file
next to the old one, moves the clients to it, then drops the old one. A
file must not be open to other users nor writable by its group (0600, or
0640 for a group of the service that reads it): it is checked when it is
read, and a router reads its files again when they change, so a rotation
needs no restart.
"""

import hmac
import os
import stat
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)
# How often a router looks whether its token files changed.
RELOAD_INTERVAL = 1.0


class TokenError(Exception):
    """The token file is missing, unreadable, empty or open to others."""


def read_tokens(path):
    """Every token of the file, first the one clients send."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise TokenError('cannot read the token file %s: %s' % (path, exc.strerror)) from None
    with os.fdopen(fd) as f:
        mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
        if mode & 0o027:
            raise TokenError('the token file %s has mode %04o: it must be readable by its '
                             'owner (and at most its group) only, and writable by its owner '
                             'only (chmod 600 or 640)' % (path, mode))
        try:
            tokens = [line.strip() for line in f if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenError('cannot read the token file %s: %s' % (path, exc)) from None
    if not tokens:
        raise TokenError('the token file %s is empty' % path)
    return tokens


def read_token(path):
    """The token a client sends: the file's first."""
    return read_tokens(path)[0]


class TokenFile:
    """The tokens of one file, read again when the file changes."""

    def __init__(self, path):
        self.path = path
        self._tokens = [t.encode() for t in read_tokens(path)]
        self._signature = _signature(path)
        self._checked = time.monotonic()

    @property
    def current(self):
        """The token to send (the file's first)."""
        return self._fresh()[0].decode()

    @property
    def all(self):
        return [t.decode() for t in self._fresh()]

    def matches(self, given):
        """Whether ``given`` is one of the tokens, compared in constant time."""
        given = given.encode() if isinstance(given, str) else given
        found = False
        for token in self._fresh():
            found |= hmac.compare_digest(given, token)
        return found

    def _fresh(self):
        now = time.monotonic()
        if now - self._checked >= RELOAD_INTERVAL:
            self._checked = now
            signature = _signature(self.path)
            if signature != self._signature:
                self._signature = signature
                try:
                    self._tokens = [t.encode() for t in read_tokens(self.path)]
                    LOG.info('Read the changed token file %s (%d token(s))', self.path,
                             len(self._tokens))
                except TokenError as exc:
                    LOG.error('Keeping the previous tokens: %s', exc)
        return self._tokens


def _signature(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode)

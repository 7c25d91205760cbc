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

"""Finding and connecting to the router that serves a volume (docs/edge.md,
"Failover").

The edge asks the routers of its own configuration (roster.py), those of
its own site first. It first follows the
registry (``locate``): a live owner other than the one just lost is
connected to directly, which is how a planned migrate is followed. Only
when that fails does it ask a router to ``acquire`` the volume in failover
mode; that router hands the volume over from the old owner or steals it.
"""

import time

from oslo_log import log as logging

from ovs_daemon.api import errors as api_errors
from ovs_daemon.nbd import client as nbd_client
from ovs_daemon.nbd import errors as nbd_errors
from ovs_daemon.nbd import protocol

LOG = logging.getLogger(__name__)
NO_ZOOKEEPER_SESSION = api_errors.NoZooKeeperSession.__name__


class NoRouter(Exception):
    """No router could serve the volume this time; try again later."""


class AttachmentRevoked(Exception):
    """A router refused the attachment token ``token``: this host may no
    longer use the volume (it was detached or evacuated elsewhere), unless
    a new token for it is on its way (an attach again)."""

    def __init__(self, message, token):
        super().__init__(message)
        self.token = token


class Upstream:
    """A connection, made with attachment ``token``, to the router that
    serves the volume at ``epoch``."""

    def __init__(self, nbd, router, epoch, token):
        self.nbd = nbd
        self.router = router
        self.epoch = epoch
        self.token = token
        # The router acknowledges a write only once it is committed (a
        # multiattach volume): it offers no FLUSH, having no write cache.
        # Read once per request: the flags are fixed at negotiation.
        self.write_through = not nbd.transmission_flags & protocol.FLAG_SEND_FLUSH

    @property
    def router_id(self):
        return self.router['id']


class Locator:
    """Finds the volume's router through the edge's :class:`~.roster.Roster`."""

    def __init__(self, volume, roster, attachment_token, settings):
        self.volume = volume
        self.roster = roster
        self.attachment_token = attachment_token
        self._settings = settings
        # Since the last find that connected, a router answered that it had
        # no ZooKeeper session.
        self._zookeeper_away = False

    def preference(self, last=None):
        return self.roster.preference(self.volume, last)

    async def find(self, lost=None, halted=(), follow_only=False):
        """Connect to whoever serves the volume now; returns an :class:`Upstream`.

        ``lost`` is the Upstream that just failed (None at attach); ``halted``
        holds ``(router id, epoch)`` pairs that reported the volume halted
        and must never be used again. With ``follow_only`` (the old owner
        halted the volume: most likely a handover or a steal under way) only
        a new live owner is connected to; nothing is acquired, so the edge
        does not snatch the volume from the router it is being moved to.

        The owner just lost is connected to again if ``locate`` still names
        it at the same epoch and either the attachment token changed (an
        owner drops the sessions of a replaced token) or a router answered
        meanwhile that it had no ZooKeeper session (a router other than
        the lost one, which may be cut off alone): every router holds IO
        while its session is suspended, so with ZooKeeper away the owner
        most likely only held the IO the edge gave up on, and it serves
        again with its session. Anywhere else the volume would be moved
        for nothing, by a handover per volume.
        """
        upstream = await self._find(lost, halted, follow_only)
        self._zookeeper_away = False
        return upstream

    async def _find(self, lost, halted, follow_only):
        lost_id = lost.router_id if lost else None
        location = await self._locate(lost_id)
        if location is not None and location['alive'] and location['router']:
            owner = (location['owner'], location['epoch'])
            stale = lost is not None and owner == (lost.router_id, lost.epoch) \
                and lost.token == self.attachment_token and not self._zookeeper_away
            if not stale and owner not in halted:
                try:
                    return await self._connect(location['router'], location['epoch'])
                except (TimeoutError, OSError, nbd_errors.NBDError) as exc:
                    LOG.warning('Volume %s: owner %s unreachable from this edge: %s',
                                self.volume, location['owner'], exc)
        if follow_only:
            raise NoRouter('volume %s has no new owner yet' % self.volume)
        for router in self.preference(last=lost_id):
            token = self.attachment_token
            try:
                location = await self.roster.call(router, 'acquire', self.volume, 'failover',
                                                  token,
                                                  timeout=self._settings.acquire_timeout)
                return await self._connect(location['router'], location['epoch'])
            except api_errors.NotFound:
                raise
            except api_errors.Forbidden as exc:
                raise AttachmentRevoked('volume %s: %s' % (self.volume, exc), token) from exc
            except (TimeoutError, api_errors.ApiError, OSError, nbd_errors.NBDError) as exc:
                self._note_zookeeper_away(router, lost_id, exc)
                LOG.warning('Volume %s: router %s cannot take it over: %s', self.volume,
                            router['api'], exc)
        raise NoRouter('no router could serve volume %s' % self.volume)

    async def _locate(self, lost_id):
        """The volume's registry record as a router sees it, or None.

        Raises :class:`NoRouter` when every router answered that it had no
        ZooKeeper session: none could acquire the volume either, and one
        whose session came back since would take it over from an owner that
        serves again, at the same epoch, with its session.
        """
        sessionless = 0
        routers = self.preference(last=lost_id)
        for router in routers:
            try:
                return await self.roster.call(router, 'locate', self.volume,
                                              timeout=self._settings.connect_timeout * 2)
            except api_errors.NotFound:
                raise
            except (api_errors.ApiError, OSError) as exc:
                self._note_zookeeper_away(router, lost_id, exc)
                sessionless += _no_session(exc)
                LOG.info('Volume %s: router %s cannot locate it: %s', self.volume,
                         router['api'], exc)
        if routers and sessionless == len(routers):
            raise NoRouter('no router of volume %s has a ZooKeeper session' % self.volume)
        return None

    def _note_zookeeper_away(self, router, lost_id, exc):
        """A router other than the one lost has no ZooKeeper session (the
        lost one's own answer proves only that it is cut off)."""
        if _no_session(exc) and (lost_id is None or router['id'] != lost_id):
            self._zookeeper_away = True

    async def _connect(self, router, epoch):
        host, _, port = router['nbd'].rpartition(':')
        started = time.monotonic()
        token = self.attachment_token
        try:
            nbd = await nbd_client.NBDClient.connect_tcp(
                host, int(port), '%s/%s' % (self.volume, token),
                timeout=self._settings.connect_timeout * 2, tls=self.roster.nbd_tls)
        except nbd_errors.ExportRefused as exc:
            if exc.reply_type == protocol.REP_ERR_POLICY:
                raise AttachmentRevoked('router %s refused the attachment of volume %s: %s'
                                        % (router['id'], self.volume, exc.message),
                                        token) from exc
            raise
        LOG.info('Volume %s: connected to router %s (epoch %d) in %.3f s', self.volume,
                 router['id'], epoch, time.monotonic() - started)
        return Upstream(nbd, router, epoch, token)


def _no_session(exc):
    """Whether a router's error says it has no ZooKeeper session."""
    return getattr(exc, 'type', None) == NO_ZOOKEEPER_SESSION

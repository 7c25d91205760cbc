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

"""The edge's control socket: JSON lines over a unix socket (docs/edge.md).

One request per line, one answer per line. The socket is created with mode
0600 before it listens, so only root (the edge's user) can attach volumes;
with a socket group (``[edge] socket_group``) it is then opened to that
group (0660). A malformed request gets an error answer; the connection
stays usable.
"""

import asyncio
import grp
import json
import os

from oslo_log import log as logging

from ovs_daemon.api import errors as api_errors

LOG = logging.getLogger(__name__)
MAX_LINE = 1 << 20


class Refused(api_errors.ApiError):
    """A router refused the attachment token."""


def group_id(group):
    """The gid of ``[edge] socket_group`` (a name or a number)."""
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ValueError('no group %r on this host' % group) from None


def directory_mode(gid):
    """Mode of the socket directories the edge creates: the group's
    processes must traverse them to reach a socket, and need not list them."""
    return 0o700 if gid is None else 0o711


def make_directories(path, gid):
    """Create ``path`` and its missing parents with :func:`directory_mode`.
    os.makedirs gives the mode to the last directory only, and through the
    umask; a parent the group cannot traverse would hide every socket."""
    if os.path.isdir(path):
        return
    make_directories(os.path.dirname(path), gid)
    try:
        os.mkdir(path)
    except FileExistsError:
        return
    os.chmod(path, directory_mode(gid))


def share_socket(path, gid):
    """Open a socket made with mode 0600 to group ``gid`` (no-op for None).
    The group is set before the mode widens, so no other group ever gets in."""
    if gid is not None:
        os.chown(path, -1, gid)
        os.chmod(path, 0o660)


class ControlServer:
    """Serves ``handler(request dict) -> answer dict`` on a unix socket."""

    def __init__(self, path, handler, gid=None):
        self.path = path
        self._handler = handler
        self._gid = gid
        self._server = None

    async def start(self):
        make_directories(os.path.dirname(self.path), self._gid)
        if os.path.exists(self.path):
            os.unlink(self.path)
        # The mode is set through the umask so the socket is never wider.
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, self.path,
                                                           limit=MAX_LINE)
        finally:
            os.umask(old_umask)
        share_socket(self.path, self._gid)
        LOG.info('Edge control socket at %s', self.path)

    async def stop(self):
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    async def _serve(self, reader, writer):
        try:
            while True:
                try:
                    line = await reader.readline()
                except (asyncio.LimitOverrunError, ValueError):
                    writer.write(_encode(_error(api_errors.BadRequest('request line too long'))))
                    break
                if not line:
                    break
                writer.write(_encode(await self._answer(line)))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _answer(self, line):
        try:
            request = json.loads(line)
        except (ValueError, RecursionError) as exc:
            return _error(api_errors.BadRequest('malformed JSON: %s' % exc))
        try:
            if not isinstance(request, dict) or not isinstance(request.get('op'), str):
                raise api_errors.BadRequest('a request is a JSON object with an "op"')
            answer = await self._handler(request)
        except api_errors.ApiError as exc:
            return _error(exc)
        except Exception as exc:
            LOG.exception('Control request failed')
            return _error(api_errors.ApiError('internal error: %s' % exc,
                                              error_type='InternalError'))
        return dict(answer, ok=True)


def _error(exc):
    return {'ok': False, 'error': {'type': exc.type, 'message': str(exc)}}


def _encode(answer):
    return (json.dumps(answer, sort_keys=True) + '\n').encode()

"""The edge's control socket: JSON lines over a unix socket (docs/edge.md).

One request per line, one answer per line. The socket is created with mode
0600 before it listens, so only root (the edge's user) can attach volumes.
A malformed request gets an error answer; the connection stays usable.
"""

import asyncio
import json
import os

from oslo_log import log as logging

LOG = logging.getLogger(__name__)
MAX_LINE = 1 << 20


class ControlError(Exception):
    """An error answer: ``type`` as docs/edge.md lists them."""

    type = 'Error'


class BadRequest(ControlError):
    type = 'BadRequest'


class NotFound(ControlError):
    type = 'NotFound'


class Unavailable(ControlError):
    type = 'Unavailable'


class Refused(ControlError):
    type = 'Refused'


class ControlServer:
    """Serves ``handler(request dict) -> answer dict`` on a unix socket."""

    def __init__(self, path, handler):
        self.path = path
        self._handler = handler
        self._server = None

    async def start(self):
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        if os.path.exists(self.path):
            os.unlink(self.path)
        # The mode is set through the umask so the socket is never wider.
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, self.path,
                                                           limit=MAX_LINE)
        finally:
            os.umask(old_umask)
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
                    writer.write(_encode(_error(BadRequest('request line too long'))))
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
        except ValueError as exc:
            return _error(BadRequest('malformed JSON: %s' % exc))
        try:
            if not isinstance(request, dict) or not isinstance(request.get('op'), str):
                raise BadRequest('a request is a JSON object with an "op"')
            answer = await self._handler(request)
        except ControlError as exc:
            return _error(exc)
        except Exception as exc:
            LOG.exception('Control request failed')
            return _error(ControlError('internal error: %s' % exc))
        return dict(answer, ok=True)


def _error(exc):
    return {'ok': False, 'error': {'type': exc.type, 'message': str(exc)}}


def _encode(answer):
    return (json.dumps(answer, sort_keys=True) + '\n').encode()

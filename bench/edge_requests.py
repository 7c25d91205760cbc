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

"""Benchmark: the Python cost of the edge's request path, in process.

    .venv/bin/python -m bench.edge_requests [--depth 16] [--requests 40000]
        [--profile]

The edge's NBD session for the guest, its volume proxy (journal included)
and its NBD client to the router, with their sockets replaced by
transports that keep what is sent: the guest's 4 KiB random reads and
writes (half each) are handed to the session ``--depth`` at a time, as
one receive; the requests the proxy sends upstream are answered at once,
as one receive; a FLUSH empties the journal every 2,000 writes. Prints
the CPU time per request (the process's, so other load on the machine
matters little) and the garbage collector's passes; ``--profile`` prints
cProfile's top entries instead. No network, no router, no fio: what is
left is the interpreter's work per request, which is what a change to
the request path should lower.
"""

import argparse
import gc
import os
import random
import time

from oslo_config import cfg
import uvloop

from ovs_cinder.edge import locator as locator_mod
from ovs_cinder.edge import opts
from ovs_cinder.edge import process_memory
from ovs_cinder.edge import volume_proxy
from ovs_daemon import compiled
from ovs_daemon.nbd import client as nbd_client
from ovs_daemon.nbd import protocol
from ovs_daemon.nbd import session as session_mod

BLOCK = 4096
VOLUME_BLOCKS = 65536
FLUSH_EVERY = 2000


class KeptTransport:
    """A transport that keeps what is written to it."""

    def __init__(self):
        self.sent = []

    def write(self, data):
        self.sent.append(bytes(data))

    def take(self):
        data, self.sent = b''.join(self.sent), []
        return data

    def is_closing(self):
        return False

    def get_extra_info(self, name, default=None):
        return default

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def abort(self):
        pass


class NoLocator:
    volume = 'bench'


def serving_session(export, transport):
    """An NBD server session in transmission, serving ``export`` and
    sending to ``transport``."""
    session = session_mod.ServerSession(None, None)
    session.transport = transport
    session.export = export
    session.peer = 'bench'
    session.start_framing()
    return session


class GuestRequests:
    """A guest's 4 KiB random requests over ``blocks`` blocks, encoded."""

    def __init__(self, blocks):
        self.blocks = blocks
        self.handle = 0
        self.random = random.Random(1)
        self.payload = os.urandom(BLOCK)

    def request(self, command, offset=0, length=0):
        self.handle += 1
        return protocol.encode_request(command, self.handle, offset, length)

    def batch(self, depth, reads=0.5):
        """``depth`` reads and writes, a share ``reads`` of them reads."""
        parts = []
        for _ in range(depth):
            offset = self.random.randrange(self.blocks) * BLOCK
            if self.random.random() < reads:
                parts.append(self.request(protocol.CMD_READ, offset, BLOCK))
            else:
                parts += [self.request(protocol.CMD_WRITE, offset, BLOCK), self.payload]
        return b''.join(parts)


def receive(conn, data):
    """Hand ``data`` to a connection as its event loop would."""
    view = memoryview(data)
    while view:
        buf = conn.get_buffer(-1)
        n = min(len(buf), len(view))
        buf[:n] = view[:n]
        conn.buffer_updated(n)
        view = view[n:]


def upstream_replies(sent):
    """The router's replies to the requests in ``sent``: success, and the
    data of each READ."""
    replies, pos = [], 0
    while pos < len(sent):
        _, _, command, handle, _, length = protocol.decode_request(sent, pos)
        pos += protocol.REQUEST.size
        if command == protocol.CMD_WRITE:
            pos += length
        replies.append(protocol.encode_simple_reply(handle))
        if command == protocol.CMD_READ:
            replies.append(bytes(length))
    return b''.join(replies)


class EdgePath:
    """The guest's session -> the proxy -> the client, on kept transports."""

    def __init__(self):
        conf = cfg.ConfigOpts()
        opts.register_opts(conf)
        self.up = KeptTransport()
        client_conn = nbd_client._ClientConnection()
        client_conn.connection_made(self.up)
        client_conn.size = VOLUME_BLOCKS * BLOCK
        client_conn.transmission_flags = protocol.FLAG_HAS_FLAGS | protocol.FLAG_SEND_FLUSH
        client_conn.start_framing()
        self.client_conn = client_conn
        self.proxy = volume_proxy.VolumeProxy(NoLocator(), conf.edge)
        self.proxy._install(locator_mod.Upstream(nbd_client.NBDClient(client_conn, 'bench'),
                                                 {'id': 'r1', 'nbd': '-'}, 1, None),
                            replay=False)
        self.guest = KeptTransport()
        self.session = serving_session(self.proxy, self.guest)
        self.requests = GuestRequests(VOLUME_BLOCKS)

    def round_trip(self, guest_bytes):
        receive(self.session, guest_bytes)
        receive(self.client_conn, upstream_replies(self.up.take()))
        return self.guest.take()

    def run(self, depth, requests):
        for _ in range(requests // depth):
            self.round_trip(self.requests.batch(depth))
            if len(self.proxy.journal) > FLUSH_EVERY:
                self.round_trip(self.requests.request(protocol.CMD_FLUSH))


class CollectorPasses:
    """The garbage collector's passes per generation while counting."""

    def __init__(self):
        self.passes = [0, 0, 0]

    def __call__(self, phase, info):
        if phase == 'stop':
            self.passes[info['generation']] += 1


async def measure(args):
    path = EdgePath()
    path.run(args.depth, 200 * args.depth)
    if args.profile:
        import cProfile
        import pstats
        profile = cProfile.Profile()
        profile.runcall(path.run, args.depth, args.requests)
        pstats.Stats(profile).sort_stats('tottime').print_stats(25)
        return
    print(compiled.summary(), flush=True)
    process_memory.freeze_start_up_objects()
    passes = CollectorPasses()
    gc.callbacks.append(passes)
    started = time.process_time()
    path.run(args.depth, args.requests)
    used = time.process_time() - started
    gc.callbacks.remove(passes)
    print('4 KiB randrw at depth %d: %.1f us of CPU per request; collector passes by '
          'generation %s' % (args.depth, used / args.requests * 1e6, passes.passes))


def request_path_arguments(description, requests):
    """The arguments of a benchmark of a request path, parsed."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--depth', type=int, default=16, help='requests per receive')
    parser.add_argument('--requests', type=int, default=requests)
    parser.add_argument('--profile', action='store_true', help='print cProfile top entries')
    return parser.parse_args()


def main():
    # The edge's event loop: its futures are uvloop's.
    uvloop.run(measure(request_path_arguments(__doc__, 40000)))


if __name__ == '__main__':
    main()

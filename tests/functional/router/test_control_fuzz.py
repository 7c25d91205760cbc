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

"""Hostile input to the control API of a live router and to an edge's
control socket: every route with random methods, headers and bodies
(boundary values, wrong types, deep nesting, huge and truncated bodies),
slow requests. Nothing crashes or hangs, memory stays bounded, the
reference volume's data is unchanged and other clients are served."""

import json
import os
import random
import socket
import time

import pytest
import requests

from ovs_daemon.api import edge_client
from ovs_daemon.devcluster import process as process_mod
from tests.functional.clients import qemu_io

pytestmark = pytest.mark.slow
MiB = 1 << 20
SEED = 20261130
REQUESTS = 3000
ROUTES = ['/v1/health', '/metrics', '/v1/routers', '/v1/routers/{router}/drain',
          '/v1/routers/{router}/undrain', '/v1/stats', '/v1/space', '/v1/volumes',
          '/v1/volumes/{name}', '/v1/volumes/{name}/extend', '/v1/volumes/{name}/stats',
          '/v1/volumes/{name}/collect', '/v1/volumes/{name}/snapshots',
          '/v1/volumes/{name}/snapshots/{snapshot}', '/v1/volumes/{name}/revert',
          '/v1/volumes/{name}/locate', '/v1/volumes/{name}/acquire',
          '/v1/volumes/{name}/migrate', '/v1/volumes/{name}/handover',
          '/v1/volumes/{name}/credentials', '/v1/volumes/{name}/attachments',
          '/v1/volumes/{name}/attachments/{host}', '/v1/nothing/here']
# Names the fuzzer uses: never the reference volume nor a live router.
NAMES = ['fz', 'fz-1', '', '.', '..', '%2e%2e', 'a' * 300, 'é', '%00', 'x/y', '-', '0']
VALUES = [None, True, False, 0, -1, 1, 4095, 4096, 2 ** 63, -2 ** 63, 2 ** 1000, 1.5,
          1e308, '', 'x' * 70000, 'fz', 'normal', 'failover',
          [], {}, [1] * 1000, {'a': {'b': {'c': []}}}]
FIELDS = ['name', 'size', 'router', 'source', 'snapshot', 'mode', 'attachment', 'to',
          'epoch', 'host', 'ttl', 'multiattach', 'timeout', 'volume']


def fuzz_body(rng):
    kind = rng.randrange(8)
    if kind == 0:
        return os.urandom(rng.randrange(0, 2000))
    if kind == 1:
        return b'[' * 5000 + b']' * 5000
    if kind == 2:
        return b'{"name": "fz", "size": ' + str(rng.choice([4096, -1, 10 ** 30])).encode()
    if kind == 3:
        return b'x' * (70 << 10)           # over the body limit
    body = {rng.choice(FIELDS): rng.choice(VALUES) for _ in range(rng.randrange(0, 5))}
    return json.dumps(body).encode()


def fuzz_request(rng, api, admin, edge):
    path = rng.choice(ROUTES).format(name=rng.choice(NAMES), router=rng.choice(NAMES),
                                     snapshot=rng.choice(NAMES), host=rng.choice(NAMES))
    method = rng.choice(['GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD', 'OPTIONS'])
    headers = {'Authorization': 'Bearer %s' % rng.choice([admin, admin, edge, 'bad', '']),
               'Content-Type': rng.choice(['application/json', 'text/plain', 'x' * 5000])}
    if rng.random() < 0.05:
        headers['X-Junk'] = 'y' * 9000
    return requests.request(method, api + path, data=fuzz_body(rng), headers=headers,
                            timeout=30)


def test_the_control_api_survives_random_and_boundary_requests(make_vpool, capsys):
    vpool = make_vpool(routers=2)
    api, router = vpool.client(), vpool.router('r1')
    api.create_volume('reference', 16 * MiB, router='r1')
    qemu_io(vpool.nbd_uri('r1', 'reference'), 'write -P 0x6d 0 4M', 'flush')
    with open(vpool.edge_token_file) as f:
        edge = f.read().strip()
    rng = random.Random(SEED)
    statuses = {}
    rss_before = process_mod.rss_bytes(router['pid'])

    slow = socket.create_connection(('127.0.0.1', int(router['api'].rsplit(':', 1)[1])))
    slow.sendall(b'POST /v1/volumes HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n'
                 b'Authorization: Bearer ' + vpool.token.encode() + b'\r\n\r\n{"na')
    try:
        for _ in range(REQUESTS):
            try:
                status = fuzz_request(rng, router['api'], vpool.token, edge).status_code
            except requests.ConnectionError:
                status = 'reset'
            statuses[status] = statuses.get(status, 0) + 1
        # A slow client (its body never completes) stalls nobody else.
        assert api.health()['router'] in ('r1', 'r2')
    finally:
        slow.close()

    rss_after = process_mod.rss_bytes(router['pid'])
    with capsys.disabled():
        print('\ncontrol API fuzz: %d requests, statuses %s, router RSS %.1f -> %.1f MiB'
              % (REQUESTS, sorted(statuses.items(), key=str), rss_before / MiB,
                 rss_after / MiB))
    assert not any(isinstance(s, int) and s >= 500 and s != 503 for s in statuses), statuses
    assert rss_after - rss_before < 64 * MiB
    assert api.volume('reference')['owner'] == 'r1'
    assert 'verification failed' not in qemu_io(vpool.nbd_uri('r1', 'reference'),
                                                'read -P 0x6d 0 4M')


def test_the_edge_control_socket_survives_random_requests(make_vpool, capsys):
    vpool = make_vpool(routers=1)
    edge = vpool.add_edge('hv1')
    api = vpool.client()
    api.create_volume('reference', 16 * MiB)
    client = edge_client.EdgeControlClient(edge['control'], timeout=30)
    uri = client.attach('reference', 'default',
                        api.create_attachment('reference', 'hv1')['token'])['uri']
    qemu_io(uri, 'write -P 0x2b 0 1M', 'flush')
    rng = random.Random(SEED)
    answers = {}
    ops = ['attach', 'detach', 'list', 'refresh', 'status', 'nope', '', None, 7]
    started = time.monotonic()
    for n in range(1000):
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(30)
        sock.connect(edge['control'])
        request = {rng.choice(FIELDS + ['op', 'token', 'routers']): rng.choice(VALUES + NAMES)
                   for _ in range(rng.randrange(0, 6))}
        request['op'] = rng.choice(ops)
        if request.get('volume') == 'reference' or request['op'] == 'detach':
            request['volume'] = 'fz'
        line = rng.choice([json.dumps(request).encode(), os.urandom(rng.randrange(1, 300)),
                           b'[' * 100000, b'x' * (2 << 20)]) + b'\n'
        try:
            sock.sendall(line)
            answer = sock.makefile('rb').readline()
        except OSError:
            answer = b'reset'
        finally:
            sock.close()
        key = json.loads(answer).get('error', {}).get('type', 'ok') \
            if answer.startswith(b'{') else answer[:5].decode(errors='replace')
        answers[key] = answers.get(key, 0) + 1
    with capsys.disabled():
        print('\nedge control fuzz: 1000 requests in %.0f s, answers %s'
              % (time.monotonic() - started, sorted(answers.items())))
    assert [v['volume'] for v in client.list()] == ['reference']
    assert 'verification failed' not in qemu_io(uri, 'read -P 0x2b 0 1M')
    assert 'InternalError' not in answers, answers

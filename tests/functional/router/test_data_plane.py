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

"""A live router's NBD data plane with real clients, and malformed traffic
that must change nothing while the router keeps serving."""

import json
import os

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from tests.functional.clients import qemu_io
from tests.functional.clients import run
from tests.functional.clients import tcp_uri
from tests.functional.nbd import test_fuzz as fuzz

pytestmark = pytest.mark.slow
MiB = 1 << 20


@pytest.fixture
def router_volume(vpool):
    """Volume "vol1" (the fuzz helpers' export name) served by r1, and the
    other volume of r1 that must keep being served."""
    api = vpool.client()
    api.create_volume('vol1', fuzz.SIZE, router='r1')
    api.create_volume('other', 16 * MiB, router='r1')
    address = vpool.router('r1')['nbd']
    return address, int(address.rsplit(':', 1)[1])


@pytest.fixture
def exports(router_volume, vpool):
    """The export names of the two volumes, with an operator's credential."""
    return {name: vpool.session_export(name) for name in ('vol1', 'other')}


def test_qemu_img_convert_into_a_volume_then_compare(router_volume, vpool, tmp_path):
    vpool.client().create_volume('image', 16 * MiB, router='r1')
    source = tmp_path / 'source.raw'
    with open(source, 'wb') as f:
        for i in range(16):
            f.write(os.urandom(MiB) if i % 3 else bytes(MiB))
    target = tcp_uri(router_volume[0], vpool.session_export('image'))
    run('qemu-img', 'convert', '-n', '-f', 'raw', '-O', 'raw', str(source), target)
    run('qemu-img', 'compare', '-f', 'raw', '-F', 'raw', str(source), target)
    qemu_io(target, 'write -P 1 5M 4k')
    out = run('qemu-img', 'compare', '-f', 'raw', '-F', 'raw', str(source), target,
              expect_ok=False)
    assert 'mismatch at offset 5242880' in out


def test_nbdinfo_shows_the_volume(router_volume, exports):
    info = json.loads(run('nbdinfo', '--json', tcp_uri(router_volume[0], exports['other'])))
    export = info['exports'][0]
    assert export['export-size'] == 16 * MiB
    assert export['block_size_preferred'] == 4096
    for capability in ('can_flush', 'can_fua', 'can_trim', 'can_zero'):
        assert export[capability] is True


def test_fio_random_writes_verify_at_queue_depth_16(router_volume, exports, tmp_path):
    run('fio', '--name=verify', '--ioengine=nbd',
        '--uri=%s' % tcp_uri(router_volume[0], exports['other']),
        '--rw=randwrite', '--bs=4k', '--iodepth=16', '--size=16M', '--verify=crc32c',
        '--do_verify=1', '--verify_fatal=1', cwd=tmp_path)


router_fuzz = settings(fuzz.fuzz_settings, max_examples=60)


@pytest.fixture
def served(router_volume, exports):
    _, port = router_volume
    reference = os.urandom(fuzz.SIZE)
    fuzz.write_all(port, reference, exports['vol1'])
    return router_volume, exports, reference


@router_fuzz
@given(requests=fuzz.bad_requests, cut=st.one_of(st.none(), st.integers(0, 200)))
def test_malformed_requests_change_nothing_on_a_router(served, requests, cut):
    (address, port), exports, reference = served
    stream = fuzz.go_handshake(exports['vol1']) + b''.join(requests)
    if cut is not None:
        stream = stream[:len(stream) - cut]
    fuzz.send_and_drain(port, stream)
    assert fuzz.read_all(port, exports['vol1']) == reference


@router_fuzz
@given(handshake=fuzz.handshakes, cut=st.one_of(st.none(), st.integers(0, 50)))
def test_malformed_handshakes_leave_the_router_serving(served, handshake, cut):
    (address, port), exports, reference = served
    if cut is not None:
        handshake = handshake[:len(handshake) - cut]
    fuzz.send_and_drain(port, handshake)
    assert fuzz.read_all(port, exports['vol1']) == reference
    assert 'verification failed' not in qemu_io(tcp_uri(address, exports['other']),
                                                'read -P 0 0 4k')

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

"""The contract every backend keeps (docs/design.md, "Backend contract")."""

from concurrent import futures
import multiprocessing
import os
import signal
import time

import pytest

from ovs_daemon.backends import base
from tests.unit.backends.conftest import make_backend

NS = 'vol1'


def claimed(backend, epoch=1, ns=NS):
    if not backend.namespace_exists(ns):
        backend.create_namespace(ns)
    key = base.OwnerKey.generate(epoch)
    backend.claim(ns, key)
    return key


def test_put_get_list_delete_with_current_key(backend):
    key = claimed(backend)
    backend.put(NS, 'data/1-1', b'hello world', key)
    backend.put(NS, 'meta', b'm', key)
    assert backend.get(NS, 'data/1-1') == b'hello world'
    assert backend.get(NS, 'data/1-1', offset=6, length=5) == b'world'
    assert backend.list(NS) == ['data/1-1', 'meta']
    assert backend.list(NS, 'data/') == ['data/1-1']
    backend.delete(NS, 'data/1-1', key)
    assert backend.list(NS) == ['meta']
    with pytest.raises(base.NotFound):
        backend.get(NS, 'data/1-1')


def test_claim_needs_a_higher_epoch(backend):
    claimed(backend, epoch=3)
    assert backend.current_epoch(NS) == 3
    for epoch in (1, 3):
        with pytest.raises(base.Fenced):
            backend.claim(NS, base.OwnerKey.generate(epoch))
    assert backend.current_epoch(NS) == 3


def test_old_key_can_change_nothing_after_a_claim(backend):
    old = claimed(backend, epoch=1)
    backend.put(NS, 'data/1-1', b'old', old)
    backend.append_log(NS, 2, b'first', old)
    new = claimed(backend, epoch=2)
    before = (backend.list(NS), list(backend.read_log(NS)))

    with pytest.raises(base.Fenced):
        backend.put(NS, 'data/2-1', b'stale', old)
    with pytest.raises(base.Fenced):
        backend.put(NS, 'data/1-1', b'overwrite', old)
    with pytest.raises(base.Fenced):
        backend.delete(NS, 'data/1-1', old)
    with pytest.raises(base.Fenced):
        backend.append_log(NS, 4, b'late', old)
    with pytest.raises(base.Fenced):
        backend.trim_log(NS, 3, old)

    assert (backend.list(NS), list(backend.read_log(NS))) == before
    assert backend.get(NS, 'data/1-1') == b'old'
    backend.put(NS, 'data/2-2', b'new', new)
    assert backend.get(NS, 'data/2-2') == b'new'


def test_a_claim_takes_the_next_log_slot(backend):
    old = claimed(backend, epoch=1)
    backend.append_log(NS, 2, b'r2', old)
    slot = backend.claim(NS, base.OwnerKey.generate(2))
    assert slot == 3
    assert list(backend.read_log(NS)) == [(1, None), (2, b'r2'), (3, None)]


def test_a_log_slot_is_written_once(backend):
    key = claimed(backend)
    backend.append_log(NS, 2, b'a', key)
    with pytest.raises(base.Fenced):
        backend.append_log(NS, 2, b'b', key)
    assert list(backend.read_log(NS, after=1)) == [(2, b'a')]


def test_trim_keeps_the_last_slot_so_numbers_are_never_reused(backend):
    key = claimed(backend)
    for slot in (2, 3, 4):
        backend.append_log(NS, slot, b'r%d' % slot, key)
    backend.trim_log(NS, 4, key)
    assert list(backend.read_log(NS)) == [(4, b'r4')]
    assert backend.claim(NS, base.OwnerKey.generate(2)) == 5


def test_unclaimed_namespace_refuses_writes(backend):
    backend.create_namespace(NS)
    with pytest.raises(base.Fenced):
        backend.put(NS, 'x', b'1', base.OwnerKey.generate(1))
    assert backend.list(NS) == []


def test_delete_namespace(backend):
    claimed(backend)
    claimed(backend, ns='vol2')
    backend.delete_namespace(NS)
    backend.delete_namespace(NS)
    assert backend.list_namespaces() == ['vol2']
    with pytest.raises(base.NotFound):
        backend.list(NS)


@pytest.mark.parametrize('name', ['', '..', '../x', 'a/../b', '.hidden',
                                  'a b', 'x' * 300, None, 'log/1'])
def test_bad_object_names_are_refused(backend, name):
    key = claimed(backend)
    with pytest.raises(base.InvalidName):
        backend.put(NS, name, b'1', key)
    assert backend.list(NS) == []


@pytest.mark.parametrize('name', ['', '..', 'a/b', '.x', None, 'a\x00b'])
def test_bad_namespace_names_are_refused(backend, name):
    with pytest.raises(base.InvalidName):
        backend.create_namespace(name)
    assert backend.list_namespaces() == []


@pytest.mark.parametrize('epoch,token', [(0, 'abcdefghij'), (1, ''),
                                         (1, 'short'), ('1', 'abcdefghij'),
                                         (1, 'bad token!')])
def test_bad_keys_are_refused(epoch, token):
    with pytest.raises(base.InvalidName):
        base.OwnerKey(epoch, token)


def test_key_token_never_shows_in_repr():
    key = base.OwnerKey.generate(7)
    assert key.token not in repr(key) and key.token not in str(key)


def _race_claim(kind, root, epoch, start, results):
    backend = make_backend(kind, root)
    key = base.OwnerKey.generate(epoch)
    while time.time() < start:
        pass
    try:
        backend.claim(NS, key)
        results.put(('won', key.token))
    except base.Fenced:
        results.put(('lost', key.token))


def test_racing_claims_from_processes_have_one_winner(backend_spec, backend):
    claimed(backend, epoch=1)
    ctx = multiprocessing.get_context('fork')
    for epoch in range(2, 12):
        results = ctx.Queue()
        start = time.time() + 0.2
        procs = [ctx.Process(target=_race_claim,
                             args=(*backend_spec, epoch, start, results))
                 for _ in range(2)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(30)
        assert sorted(o for o, _ in outcomes) == ['lost', 'won']
        assert backend.current_epoch(NS) == epoch


def _write_forever(kind, root, key_raw, ready):
    backend = make_backend(kind, root)
    key = base.OwnerKey.decode(key_raw)
    payload = os.urandom(1 << 20) * 16
    ready.set()
    n = 0
    while True:
        backend.put(NS, 'data/%d-1' % n, payload, key)
        n += 1


def test_a_process_killed_mid_write_leaves_no_partial_object(backend_spec,
                                                            backend):
    key = claimed(backend)
    ctx = multiprocessing.get_context('fork')
    for delay in (0.05, 0.13, 0.31):
        ready = ctx.Event()
        proc = ctx.Process(target=_write_forever,
                           args=(*backend_spec, key.encode(), ready))
        proc.start()
        ready.wait(30)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
        for name in backend.list(NS, 'data/'):
            assert len(backend.get(NS, name)) == 16 << 20, name


def test_usage_counts_stored_bytes(backend):
    before = backend.usage()['used_bytes']
    key = claimed(backend)
    backend.put(NS, 'blob', b'x' * 100_000, key)
    usage = backend.usage()
    assert usage['used_bytes'] >= before + 100_000
    if usage['capacity_bytes'] is not None:
        assert 0 <= usage['free_bytes'] <= usage['capacity_bytes']


def test_a_recreated_namespace_never_reads_the_old_objects(backend_spec, backend):
    """Another client deletes and re-creates the namespace; once this one
    claims it again, it reads the new object of the same name."""
    key = claimed(backend)
    backend.put(NS, 'data/1-1', b'old' * 1000, key)
    assert backend.get(NS, 'data/1-1', 0, 3) == b'old'
    other = make_backend(*backend_spec)
    other.delete_namespace(NS)
    other.create_namespace(NS)
    other_key = base.OwnerKey.generate(1)
    other.claim(NS, other_key)
    other.put(NS, 'data/1-1', b'new' * 1000, other_key)
    backend.claim(NS, base.OwnerKey.generate(2))
    assert backend.get(NS, 'data/1-1', 0, 3) == b'new'
    assert backend.get(NS, 'data/1-1', 2997, 3) == b'new'


def _commit_forever(kind, root, key_raw, running, fenced):
    """An owner's flush loop: a data object, its commit, the previous
    object deleted; until a write is fenced."""
    backend = make_backend(kind, root)
    key = base.OwnerKey.decode(key_raw)
    slot = max((s for s, _ in backend.read_log(NS)), default=0) + 1
    running.set()
    try:
        while True:
            backend.put(NS, 'data/%d-%d' % (slot, key.epoch), b'd' * 4096, key)
            backend.append_log(NS, slot, b'commit %d' % slot, key)
            backend.delete(NS, 'data/%d-%d' % (slot - 1, key.epoch), key)
            slot += 1
    except base.Fenced:
        fenced.set()


def test_a_writer_stopped_anywhere_never_holds_up_a_claim(backend_spec, backend):
    """A hung owner (SIGSTOP at any point of its writes) must not stop
    another router from stealing: the claim completes while it is stopped,
    and once it runs again it commits nothing after the claim."""
    key = claimed(backend)
    ctx = multiprocessing.get_context('fork')
    for attempt in range(20):
        running, fenced = ctx.Event(), ctx.Event()
        writer = ctx.Process(target=_commit_forever,
                             args=(*backend_spec, key.encode(), running, fenced))
        writer.start()
        try:
            assert running.wait(30)
            time.sleep(0.01 + 0.007 * attempt)
            os.kill(writer.pid, signal.SIGSTOP)
            key = base.OwnerKey.generate(key.epoch + 1)
            claim = futures.ThreadPoolExecutor(1)
            try:
                claim_slot = claim.submit(backend.claim, NS, key).result(timeout=10)
            finally:
                os.kill(writer.pid, signal.SIGCONT)
                claim.shutdown()
            assert fenced.wait(30), 'the stale writer was never fenced'
        finally:
            os.kill(writer.pid, signal.SIGKILL)
            writer.join(30)
        after_claim = [slot for slot, _ in backend.read_log(NS, after=claim_slot)]
        assert after_claim == [], 'a stale writer committed after the claim'

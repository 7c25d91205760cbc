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

"""What only the s3 backend has: the start-up check of conditional writes,
and how it meets the errors of a real S3 endpoint (faults injected by a
proxy in front of the test store)."""

import dataclasses
import logging
import os
import urllib.parse

import pytest

from ovs_daemon import opts
from ovs_daemon.backends import base
from ovs_daemon.backends import crc32
from ovs_daemon.backends import s3
from ovs_daemon.cmd import router as router_cmd
from ovs_daemon.engine import volume as volume_mod
from tests.unit import s3_proxy

NS = 'vol1'
SLOT2 = '/%s/log/%016d' % (NS, 2)


@pytest.fixture
def proxy(s3_test_place):
    url = urllib.parse.urlsplit(s3_test_place.endpoint_url or 'https://aws')
    if url.scheme != 'http':
        pytest.skip('the fault proxy speaks plain HTTP only')
    with s3_proxy.FaultProxy(url.hostname, url.port) as running:
        yield running


@pytest.fixture
def direct(s3_test_place):
    """The backend straight on the store, beside the one through the
    proxy: another router."""
    return s3_test_place.backend()


@pytest.fixture
def proxied(s3_test_place, proxy):
    return dataclasses.replace(s3_test_place,
                               endpoint_url=proxy.url).backend()


def claimed(backend, epoch=1):
    if not backend.namespace_exists(NS):
        backend.create_namespace(NS)
    key = base.OwnerKey.generate(epoch)
    backend.claim(NS, key)
    return key


def requests_to(proxy, method, path):
    return [seen for seen in proxy.seen
            if seen.method == method and path in seen.path]


# The start-up check

def test_a_conforming_endpoint_passes_the_start_up_check(direct):
    direct.check_conditional_writes()
    assert direct.usage()['used_bytes'] == 0  # the probe is removed


def test_an_endpoint_ignoring_conditions_fails_the_start_up_check(proxy,
                                                                  proxied):
    proxy.add(s3_proxy.Fault('strip_conditions', times=None))
    with pytest.raises(s3.ConditionalWritesUnsupported,
                       match='does not honour conditional writes.*If-None-'
                             'Match.*refusing to serve'):
        proxied.check_conditional_writes()


def test_an_endpoint_ignoring_if_match_fails_the_start_up_check(proxy,
                                                                proxied):
    # Only If-Match is stripped: If-None-Match still holds.
    proxy.add(s3_proxy.Fault('strip_conditions', times=None,
                             header='If-Match'))
    with pytest.raises(s3.ConditionalWritesUnsupported, match='IfMatch'):
        proxied.check_conditional_writes()


def _router_conf(tmp_path, place, endpoint_url):
    token = tmp_path / 'token'
    token.write_text('t' * 32)
    token.chmod(0o600)
    conf = tmp_path / 'router.conf'
    conf.write_text(
        '[router]\nid = r1\ntoken_file = %s\n'
        '[backend]\nbackend = s3\ns3_endpoint_url = %s\ns3_bucket = %s\n'
        's3_prefix = %s\ns3_region = %s\ns3_access_key = %s\n'
        's3_secret_key = %s\n'
        % (token, endpoint_url, place.bucket, place.prefix.rstrip('/'),
           place.region, *(place.credentials or ('', ''))))
    return str(conf)


@pytest.fixture
def logging_restored():
    """ovs-router's main sets up logging to the (captured) stderr; put the
    handlers back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_router_refuses_to_serve_on_a_non_conforming_endpoint(
        tmp_path, s3_test_place, proxy, capsys, logging_restored):
    if not s3_test_place.credentials:
        pytest.skip('needs credentials in the configuration')
    proxy.add(s3_proxy.Fault('strip_conditions', times=None))
    conf = _router_conf(tmp_path, s3_test_place, proxy.url)
    assert router_cmd.main(['--config-file', conf]) == 1
    err = capsys.readouterr().err
    assert 'does not honour conditional writes' in err
    assert s3_test_place.credentials[1] not in err


def test_make_backend_builds_a_checked_s3_backend(tmp_path, s3_test_place):
    if not s3_test_place.credentials or not s3_test_place.endpoint_url:
        pytest.skip('needs an endpoint and credentials in the configuration')
    conf = router_cmd.parse_config(['--config-file', _router_conf(
        tmp_path, s3_test_place, s3_test_place.endpoint_url)])
    backend = opts.make_backend(conf)
    assert isinstance(backend, s3.S3Backend)
    assert backend.prefix == s3_test_place.prefix
    assert s3_test_place.credentials[1] not in repr(backend.settings)


# Errors of the endpoint

def test_a_taken_slot_is_fenced_and_never_retried(proxy, proxied):
    key = claimed(proxied)
    proxied.append_log(NS, 2, b'first', key)
    proxy.seen.clear()
    with pytest.raises(base.Fenced, match='slot 2 is taken'):
        proxied.append_log(NS, 2, b'second', key)
    assert [s.status for s in requests_to(proxy, 'PUT', SLOT2)] == [412]


def test_a_conflict_409_is_read_back_and_retried(proxy, proxied):
    key = claimed(proxied)
    proxy.add(s3_proxy.Fault('fail_before', path=SLOT2, status=409,
                             code='ConditionalRequestConflict'))
    proxied.append_log(NS, 2, b'r2', key)
    assert [s.status for s in requests_to(proxy, 'PUT', SLOT2)] == [409, 200]
    assert list(proxied.read_log(NS, after=1)) == [(2, b'r2')]


def test_transient_errors_are_retried_with_backoff(proxy, proxied):
    key = claimed(proxied)
    proxy.add(s3_proxy.Fault('fail_before', path='/o/data', times=2,
                             status=503, code='SlowDown'))
    proxy.add(s3_proxy.Fault('fail_before', method='GET', path='/o/data',
                             status=500))
    proxied.put(NS, 'data/1-1', b'payload', key)
    assert proxied.get(NS, 'data/1-1') == b'payload'
    assert [s.status for s in requests_to(proxy, 'PUT', '/o/data')] == \
        [503, 503, 200]
    assert [s.status for s in requests_to(proxy, 'GET', '/o/data')] == \
        [500, 200]


def test_retries_give_up_with_a_backend_error(proxy, s3_test_place):
    backend = dataclasses.replace(s3_test_place,
                                  endpoint_url=proxy.url).backend(
                                      max_attempts=3)
    key = claimed(backend)
    proxy.add(s3_proxy.Fault('fail_before', path='/o/x', times=None))
    with pytest.raises(base.BackendError, match='InternalError.*3 attempts'):
        backend.put(NS, 'x', b'1', key)


@pytest.mark.parametrize('fault', ['fail_after', 'drop_after'])
def test_a_commit_of_unknown_outcome_is_read_back_not_resent(proxy, proxied,
                                                             fault):
    """The slot was written but the answer lost: the writer reads the slot,
    finds its own record and does not write again (a resent put-if-absent
    would get 412 and call an owner fenced)."""
    key = claimed(proxied)
    proxy.add(s3_proxy.Fault(fault, path=SLOT2))
    proxied.append_log(NS, 2, b'r2', key)
    assert len(requests_to(proxy, 'PUT', SLOT2)) == 1
    assert requests_to(proxy, 'GET', SLOT2)
    assert list(proxied.read_log(NS, after=1)) == [(2, b'r2')]


def test_a_commit_of_unknown_outcome_not_applied_is_written_again(proxy,
                                                                  proxied):
    key = claimed(proxied)
    proxy.add(s3_proxy.Fault('fail_before', path=SLOT2, status=500))
    proxied.append_log(NS, 2, b'r2', key)
    assert [s.status for s in requests_to(proxy, 'PUT', SLOT2)] == [500, 200]
    assert list(proxied.read_log(NS, after=1)) == [(2, b'r2')]


def test_a_commit_of_unknown_outcome_lost_to_another_writer_is_fenced(
        proxy, proxied, direct):
    """While the writer's answer is lost a new owner claims and takes the
    slot: the read-back finds another record, and the writer is fenced."""
    key = claimed(proxied)
    proxy.add(s3_proxy.Fault(
        'fail_before', path=SLOT2, status=500,
        hook=lambda: direct.claim(NS, base.OwnerKey.generate(2))))
    with pytest.raises(base.Fenced):
        proxied.append_log(NS, 2, b'late', key)
    assert list(direct.read_log(NS, after=1)) == [(2, None)]


def new_owner_claims_and_trims(direct, slot):
    """A fault's hook: a new owner (epoch 2) claims ``slot``, commits the
    next slot and trims the log up to it."""
    def hook():
        new = base.OwnerKey.generate(2)
        assert direct.claim(NS, new) == slot
        direct.append_log(NS, slot + 1, b'r%d' % (slot + 1), new)
        direct.trim_log(NS, slot + 1, new)
    return hook


def test_a_commit_landing_after_a_claim_is_not_acknowledged(proxy, proxied,
                                                            direct):
    """The writer's key check passed; before its put of slot 3 arrives, a
    new owner claims slot 3, commits slot 4 and trims slot 3 away. The put
    then finds slot 3 free, but the writer must not acknowledge a commit
    the new owner never read: it is told it is fenced."""
    key = claimed(proxied)
    proxied.append_log(NS, 2, b'r2', key)
    slot3 = '/%s/log/%016d' % (NS, 3)
    proxy.add(s3_proxy.Fault('pass', path=slot3,
                             hook=new_owner_claims_and_trims(direct, 3)))
    with pytest.raises(base.Fenced, match='claimed by another writer'):
        proxied.append_log(NS, 3, b'late', key)
    assert [s.status for s in requests_to(proxy, 'PUT', slot3)] == [200]


def test_a_commit_found_by_the_engines_read_back_after_a_claim_is_fenced(
        proxy, s3_test_place, direct):
    """As above, but the writer's own read-back of its slot fails too
    (RetriesExhausted), so the engine reads the slot back itself and finds
    its record in place: it must still see that the volume was claimed
    meanwhile, and not acknowledge the commit."""
    backend = dataclasses.replace(s3_test_place, endpoint_url=proxy.url).backend(
        max_attempts=3)
    vol = volume_mod.Volume.create(backend, NS, 1 << 20, base.OwnerKey.generate(1))
    vol.write(0, b'w' * 4096)
    proxy.add(s3_proxy.Fault('drop_after', path=SLOT2,
                             hook=new_owner_claims_and_trims(direct, 2)))
    proxy.add(s3_proxy.Fault('fail_before', method='GET', path=SLOT2, times=3))
    with pytest.raises(base.Fenced, match='claimed at epoch 2'):
        vol.flush()
    assert vol.halted


def test_a_claim_of_unknown_outcome_is_read_back(proxy, proxied):
    claimed(proxied)
    proxy.seen.clear()
    proxy.add(s3_proxy.Fault('drop_after', path='/.owner', header='If-Match'))
    new = base.OwnerKey.generate(2)
    assert proxied.claim(NS, new) == 2
    assert len(requests_to(proxy, 'PUT', '/.owner')) == 1
    assert proxied.current_epoch(NS) == 2
    assert list(proxied.read_log(NS)) == [(1, None), (2, None)]


def test_a_higher_claim_overtakes_a_lower_one_racing_it(proxy, proxied,
                                                        direct):
    """The owner record changes between the read and the swap: a 412 on the
    owner record is read again, and a higher epoch still wins."""
    claimed(direct)
    proxy.add(s3_proxy.Fault(
        'pass', path='/.owner', header='If-Match',
        hook=lambda: direct.claim(NS, base.OwnerKey.generate(3))))
    winner = base.OwnerKey.generate(5)
    proxied.claim(NS, winner)
    assert [s.status for s in requests_to(proxy, 'PUT', '/.owner')] == \
        [412, 200]
    assert direct.current_epoch(NS) == 5
    proxied.append_log(NS, 4, b'r4', winner)


def test_a_lower_claim_overtaken_by_a_higher_one_is_fenced(proxy, proxied,
                                                           direct):
    claimed(direct)
    proxy.add(s3_proxy.Fault(
        'pass', path='/.owner', header='If-Match',
        hook=lambda: direct.claim(NS, base.OwnerKey.generate(5))))
    with pytest.raises(base.Fenced, match='epoch 5 is current'):
        proxied.claim(NS, base.OwnerKey.generate(3))
    assert [s.status for s in requests_to(proxy, 'PUT', '/.owner')] == [412]


# Layout

def test_large_objects_go_multipart_and_read_back_by_range(proxy, proxied):
    key = claimed(proxied)
    data = os.urandom(13 << 20)
    proxied.put(NS, 'data/1-1', data, key)
    assert requests_to(proxy, 'POST', '?uploads')
    assert proxied.get(NS, 'data/1-1') == data
    edge = 5 << 20
    assert proxied.get(NS, 'data/1-1', edge - 10, 20) == data[edge - 10:
                                                              edge + 10]
    with pytest.raises(base.BackendError, match='short read'):
        proxied.get(NS, 'data/1-1', len(data) - 4, 8)


def test_an_object_changed_on_the_way_fails_its_checksum(proxy, proxied):
    """botocore sums no response; the backend checks a whole object
    against the CRC-32 the store sent with it, from the CRCs of its
    pieces when asked for those."""
    key = claimed(proxied)
    data = os.urandom(300 * 1024)
    proxied.put(NS, 'data/c1', data, key)
    assert proxied.get_with_crc32s(NS, 'data/c1', 0, len(data), 64 * 1024) == \
        (data, crc32.of_pieces(data, 64 * 1024))
    assert proxied.get_with_crc32s(NS, 'data/c1', 4096, 70000, 64 * 1024) == \
        (data[4096:74096], crc32.of_pieces(data[4096:74096], 64 * 1024))
    proxy.add(s3_proxy.Fault('corrupt', method='GET', path='/o/data/c1', times=3))
    with pytest.raises(s3.ChecksumMismatch):
        proxied.get(NS, 'data/c1')
    with pytest.raises(s3.ChecksumMismatch):
        proxied.get(NS, 'data/c1', 0, len(data))
    with pytest.raises(s3.ChecksumMismatch):
        proxied.get_with_crc32s(NS, 'data/c1', 0, len(data), 64 * 1024)
    assert proxied.get(NS, 'data/c1') == data


def test_the_key_token_is_never_stored(s3_test_place, direct):
    from tests.unit import s3_store
    key = claimed(direct)
    direct.append_log(NS, 2, b'r', key)
    s3_client = s3_store.client(s3_test_place)
    listing = s3_client.list_objects_v2(Bucket=s3_test_place.bucket,
                                        Prefix=s3_test_place.prefix)
    for item in listing['Contents']:
        body = s3_client.get_object(Bucket=s3_test_place.bucket,
                                    Key=item['Key'])['Body'].read()
        assert key.token.encode() not in body, item['Key']

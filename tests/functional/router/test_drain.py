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


"""A router stopping on SIGTERM hands its volumes over for at most
drain_timeout seconds, then stops anyway, keeping what is left."""

import logging

import pytest

pytestmark = pytest.mark.slow
MiB = 1 << 20


def test_a_stop_whose_peers_do_not_answer_ends_after_the_drain_time(make_vpool, caplog):
    vpool = make_vpool(routers=2, options={'router': {'drain_timeout': 2.0,
                                                      'peer_timeout': 0.5}})
    vpool.client().create_volume('v1', 16 * MiB, router='r1')
    vpool.pause_router('r2')          # hung: accepts connections, never answers
    try:
        with caplog.at_level(logging.WARNING, logger='ovs_daemon.devcluster.process'):
            vpool.stop_router('r1')
    finally:
        vpool.resume_router('r2')
    assert 'Router r1 drained: 0 volume(s) handed over, 1 left; v1: ' in vpool.log_text('r1')
    # It exited by itself after the drain time, not by the SIGKILL that
    # follows a SIGTERM ignored for 10 s.
    assert not [r for r in caplog.records if 'killing it' in r.getMessage()]


def test_a_stop_with_every_peer_drained_keeps_its_volumes(make_vpool):
    vpool = make_vpool(routers=2)
    api = vpool.client()
    api.create_volume('v1', 16 * MiB, router='r1')
    api.drain('r2')
    vpool.stop_router('r1')
    assert 'Router r1 drained: 0 volume(s) handed over, 1 left' in vpool.log_text('r1')
    record = vpool.client('r2').volume('v1')
    assert (record['owner'], record['epoch']) == ('r1', 1), record
    vpool.start_router('r1')
    vpool.wait_until(lambda: vpool.client('r1').health()['served'] == ['v1'], timeout=30,
                     what='r1 taking its volume back')

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

"""A router stopped as systemd stops it (SIGTERM) hands its volumes over to
live peers before it exits, so the edges follow them with a handover's
pause instead of stealing them from a router that is gone."""

import logging

import pytest

from tests.functional.edge.test_use_cases import assert_nothing_lost
from tests.functional.edge.test_use_cases import run_guest_across

pytestmark = pytest.mark.slow
LOG = logging.getLogger(__name__)
MiB = 1 << 20


def test_a_router_stopped_with_sigterm_hands_its_volumes_to_its_site(vpool, hypervisors):
    api = vpool.client()
    for name in ('v1', 'v2', 'v3'):
        api.create_volume(name, 64 * MiB, router='r1')
    hva = hypervisors['hva']
    socket_path = hva.attach('v1')

    guest = run_guest_across(hva.guest('v1', socket_path), lambda: vpool.stop_router('r1'))

    assert_nothing_lost(guest)
    for name in ('v1', 'v2', 'v3'):
        record = api.volume(name)
        # r2 shares r1's site a; r3 (site b) gets nothing while r2 lives.
        assert (record['owner'], record['epoch']) == ('r2', 2), record
        assert record['transfer'] == dict(record['transfer'], kind='handover', **{'from': 'r1'})
    assert [(v['router'], v['epoch']) for v in hva.edge.list()] == [('r2', 2)]
    LOG.warning('IO pause, owner stopped with SIGTERM (drain): %.3f s', guest.longest_gap)

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


"""The rolling upgrade of bench/rolling_upgrade.py, as a slow test: every
router (SIGTERM, start), the edge, then each member of a 3-node ZooKeeper
ensemble restarted one after the other under a verifying guest's IO. The
pauses are benchmark figures (docs/performance.md); here: no IO error, no
stale read, no lost write, and the routers handed the volume over."""

import logging

import pytest

from bench import rolling_upgrade

pytestmark = pytest.mark.slow
LOG = logging.getLogger(__name__)


def test_a_rolling_upgrade_under_io_costs_the_guest_nothing(tmp_path):
    text, guest, figures, (checked, wrong), record = rolling_upgrade.run(
        str(tmp_path / 'vpool'), say=LOG.info)
    LOG.warning('%s', text)

    assert guest.errors == [], text                      # I4
    assert guest.stale_reads == [], text                 # I2
    assert checked > 0 and wrong == [], text             # I1
    assert [what for what, _, _ in figures] == [what for what, _ in rolling_upgrade.steps()]
    assert guest.reconnects >= 1, text                   # the edge restart was seen
    # Every router restart handed the volume over: no steal, no restart-take.
    assert record['transfer']['kind'] == 'handover', record
    assert record['epoch'] >= 3, record

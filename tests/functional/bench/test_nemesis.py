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

"""A short seeded run of the fault campaign (bench/nemesis.py): real
ZooKeeper, routers and an edge on simulated hosts, faults drawn from the
seed, every read checked against what was acknowledged. The long runs and
their pauses are benchmarks (docs/performance.md)."""

import pytest

from bench import nemesis

pytestmark = pytest.mark.slow


def short_campaign(tmp_path, multiattach=False):
    return nemesis.run_campaign(seed=3, duration=60, multiattach=multiattach,
                                results_path=str(tmp_path / 'nemesis.md'),
                                prefix='ovsnt', subnet='10.213.216.0/24')


def test_a_short_campaign_passes(tmp_path):
    text, passed, run = short_campaign(tmp_path)

    assert_checked_and_passed(text, passed, run)


def test_a_short_campaign_on_a_multiattach_volume_passes(tmp_path):
    # Two hosts write the same blocks through their own edges.
    text, passed, run = short_campaign(tmp_path, multiattach=True)

    assert_checked_and_passed(text, passed, run)
    writers = {w.writer for w in run.history.writes.values() if w.ok}
    assert writers == {1, 2}, text


def assert_checked_and_passed(text, passed, run):
    assert passed, text
    assert len(run.faults) >= 3, text
    assert len({fault.name for fault in run.faults}) >= 2, text
    live_reads = [r for r in run.history.reads if not r.final]
    final_reads = [r for r in run.history.reads if r.final]
    assert len(live_reads) > 1000, text
    assert len(final_reads) == 2 * len(run.edges) * run.blocks, text

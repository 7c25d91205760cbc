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

"""The edge's watchdog: one task checks the attached volumes, however many
there are: a busy one at every tick, the idle ones in turn."""

import asyncio

from ovs_cinder.edge import watchdog
from tests import awaiting


class Volume:

    def __init__(self, name, fails=False):
        self.name = name
        self.fails = fails
        self.busy = False
        self.checks = []

    def check_upstream(self, now):
        self.checks.append(now)
        if self.fails:
            raise RuntimeError('broken')


def test_one_task_checks_every_volume_at_each_tick_when_idle_volumes_are_due_each_tick():
    async def scenario():
        tasks = len(asyncio.all_tasks())
        dog = watchdog.shared(0.01, 0.01)
        assert watchdog.shared(0.01, 0.01) is dog
        volumes = [Volume('v%d' % i, fails=i == 3) for i in range(1000)]
        for volume in volumes:
            dog.watch(volume)
        assert len(asyncio.all_tasks()) == tasks + 1
        await awaiting.until(lambda: all(len(v.checks) >= 3 for v in volumes))
        # One tick checks all at one instant; a volume failing its check
        # does not keep the others from theirs.
        assert len({v.checks[0] for v in volumes}) == 1

        dog.unwatch(volumes[0])
        seen = len(volumes[0].checks)
        await awaiting.until(lambda: len(volumes[1].checks) >= seen + 3)
        assert len(volumes[0].checks) == seen
        for volume in volumes:
            dog.unwatch(volume)
        await awaiting.until(lambda: len(asyncio.all_tasks()) == tasks)

        dog.watch(volumes[0])    # a later attach starts it again
        await awaiting.until(lambda: len(volumes[0].checks) > seen)
        dog.unwatch(volumes[0])
    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_idle_volumes_are_checked_in_turn_and_a_busy_one_at_every_tick():
    """At a thousand idle volumes the edge must not check each of them ten
    times per IO timeout: an idle volume is checked once per idle interval
    (a tenth of them at each of ten ticks, spread), while a volume with
    IO in flight is checked at every tick, from the tick after it became
    busy until it is idle again."""
    async def scenario():
        dog = watchdog.shared(0.01, 0.1)
        volumes = [Volume('v%d' % i) for i in range(100)]
        for volume in volumes:
            dog.watch(volume)
        await awaiting.until(lambda: all(v.checks for v in volumes))
        ticks = sorted({t for v in volumes for t in v.checks})
        first_round = ticks[:10]
        per_tick = [sum(t in v.checks for v in volumes) for t in first_round]
        assert per_tick == [10] * 10
        assert all(len(v.checks) <= 2 for v in volumes)

        busy = volumes[5]
        busy.busy = True
        dog.busy(busy)
        since = len(busy.checks)
        await awaiting.until(lambda: len(busy.checks) >= since + 12)
        later = [t for v in volumes for t in v.checks if t > busy.checks[since]]
        assert set(later) <= set(busy.checks)    # every tick since, it was checked

        busy.busy = False
        await awaiting.until(lambda: len(volumes[0].checks) >= 4)
        seen = len(busy.checks)
        await awaiting.until(lambda: len(volumes[0].checks) >= 6)
        assert len(busy.checks) <= seen + 3     # back in the idle turn
        for volume in volumes:
            dog.unwatch(volume)
    asyncio.run(asyncio.wait_for(scenario(), 30))

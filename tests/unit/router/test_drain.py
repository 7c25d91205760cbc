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

"""Where a draining router sends each of its volumes."""

from ovs_daemon.router import drain


def peers(**sites):
    return {router: {'id': router, 'site': site} for router, site in sites.items()}


def test_volumes_go_to_peers_of_the_same_site_spread_by_load():
    choices = drain.plan(['v1', 'v2', 'v3', 'v4', 'v5'], peers(r2='a', r3='a', r4='b'),
                         'a', {'r2': 1, 'r4': 0})
    firsts = [choices[name][0] for name in ('v1', 'v2', 'v3', 'v4', 'v5')]
    assert firsts == ['r3', 'r2', 'r3', 'r2', 'r3']
    # The other site is only a fallback.
    assert all(choices[name][-1] == 'r4' for name in choices)


def test_another_site_takes_the_volumes_when_no_peer_shares_the_site():
    choices = drain.plan(['v1', 'v2'], peers(r3='b', r4='c'), 'a', {})
    assert [choices['v1'][0], choices['v2'][0]] == ['r3', 'r4']


def test_without_peers_no_volume_has_a_destination():
    assert drain.plan(['v1'], {}, 'a', {}) == {'v1': []}

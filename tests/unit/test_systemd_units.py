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

"""The systemd units in etc/systemd: systemd-analyze accepts them, and they
keep the restart policy, the hardening and the ordering the operator's
guide promises, with paths that agree with the options' defaults."""

import os
import subprocess
import sys

import pytest

from ovs_cinder.edge import opts as edge_opts
from ovs_daemon import opts as router_opts

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNITS = os.path.join(REPO, 'etc', 'systemd')
ROUTER, EDGE = 'ovs-router@.service', 'ovs-edge.service'


def parse(name):
    """{section: {key: [values]}}: keys such as Before= may repeat."""
    sections, section = {}, None
    with open(os.path.join(UNITS, name)) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            if line.startswith('['):
                section = sections.setdefault(line.strip('[]'), {})
                continue
            key, _, value = line.partition('=')
            section.setdefault(key, []).append(value)
    return sections


def words(unit, section, key):
    return ' '.join(parse(unit)[section].get(key, [])).split()


def default(options, name):
    return next(o.default for o in options if o.name == name)


@pytest.mark.parametrize('unit', [ROUTER, EDGE])
def test_restart_policy_and_hardening(unit):
    service = parse(unit)['Service']
    # Ready only once serving (ovs_daemon/sd_notify.py), so the units
    # ordered after it start when they can use it.
    assert service['Type'] == ['notify']
    assert service.get('NotifyAccess', ['main']) == ['main']
    assert service['Restart'] == ['on-failure']
    assert 1 <= int(service['RestartSec'][0]) <= 5
    for key, value in [('NoNewPrivileges', 'yes'), ('ProtectSystem', 'strict'),
                       ('ProtectHome', 'yes'), ('PrivateTmp', 'yes'),
                       ('PrivateDevices', 'yes'), ('UMask', '0077'),
                       ('SystemCallFilter', '@system-service')]:
        assert service[key] == [value], key
    assert set(words(unit, 'Service', 'RestrictAddressFamilies')) == {
        'AF_UNIX', 'AF_INET', 'AF_INET6'}
    assert parse(unit)['Install']['WantedBy'] == ['multi-user.target']


def test_the_router_starts_after_the_network_and_zookeeper_and_writes_its_backend_only():
    unit = parse(ROUTER)
    assert unit['Unit']['Wants'] == ['network-online.target']
    assert {'network-online.target', 'zookeeper.service'} <= set(words(ROUTER, 'Unit', 'After'))
    assert unit['Service']['ExecStart'] == [
        '/usr/local/bin/ovs-router --config-file /etc/ovs-edge/ovs-router-%i.conf']
    assert unit['Service']['CapabilityBoundingSet'] == ['']
    state = '/var/lib/' + unit['Service']['StateDirectory'][0]
    assert unit['Service']['ReadWritePaths'] == [state]
    # The backend's default directory is one the unit may write.
    local_path = default(router_opts.backend_opts, 'local_path')
    assert local_path.startswith(state + '/')


def test_the_edge_starts_before_nova_compute_and_owns_its_run_directory():
    unit = parse(EDGE)
    before = set(words(EDGE, 'Unit', 'Before'))
    assert {'nova-compute.service', 'openstack-nova-compute.service',
            'cinder-volume.service', 'libvirt-guests.service'} <= before
    assert 'network-online.target' in words(EDGE, 'Unit', 'After')
    assert unit['Service']['ExecStart'] == [
        '/usr/local/bin/ovs-edge --config-file /etc/ovs-edge/ovs-edge.conf']
    assert unit['Service']['CapabilityBoundingSet'] == ['CAP_CHOWN']
    run = '/run/' + unit['Service']['RuntimeDirectory'][0]
    # Traversable by the socket group's processes, not listable.
    assert unit['Service']['RuntimeDirectoryMode'] == ['0711']
    # ProtectSystem=strict leaves only the runtime directory writable: the
    # default sockets must be in it.
    for name in ('control_socket', 'socket_dir'):
        assert default(edge_opts.edge_opts, name).startswith(run + '/'), name


def test_systemd_accepts_the_units(tmp_path):
    # verify also checks that ExecStart exists: point it at this
    # virtualenv's scripts, which the units' /usr/local/bin stands for.
    bin_dir = os.path.dirname(sys.executable)
    for name in (ROUTER, EDGE):
        with open(os.path.join(UNITS, name)) as f:
            text = f.read().replace('/usr/local/bin/', bin_dir + '/')
        (tmp_path / name).write_text(text)
    result = subprocess.run(['systemd-analyze', 'verify', str(tmp_path / EDGE),
                             str(tmp_path / 'ovs-router@r1.service')],
                            capture_output=True, text=True, timeout=60)
    # Unknown keys and bad values are only warnings: none is expected.
    assert (result.returncode, result.stderr) == (0, '')

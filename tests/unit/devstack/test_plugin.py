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

"""The DevStack plugin (devstack/): shellcheck-clean, and run phase by phase
as stack.sh, unstack.sh and clean.sh run it, with stand-ins for the DevStack
functions it calls. The stand-ins record what the plugin asked for (services
to start and stop, packages, privileged commands) and write real ini files,
so the test reads the cinder.conf, tempest.conf and the router and edge
configs the plugin made."""

import configparser
import os
import stat
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
DEVSTACK = os.path.join(REPO, 'devstack')

INISET = '''
import configparser, sys
path, section, option, value = sys.argv[1:5]
config = configparser.RawConfigParser()
config.optionxform = str
config.read(path)
if section != 'DEFAULT' and not config.has_section(section):
    config.add_section(section)
config.set(section, option, value)
with open(path, 'w') as f:
    config.write(f)
'''

# Stand-ins for DevStack's functions, as lib/ and functions-common define
# them, reduced to what they leave behind.
STANDINS = r'''
record() { printf '%s\n' "$*" >> "$RECORD"; }
function is_service_enabled {
    local s
    for s in "$@"; do
        [[ ,$ENABLED_SERVICES, == *,$s,* ]] && return 0
    done
    return 1
}
function enable_service {
    local s
    for s in "$@"; do
        is_service_enabled "$s" || ENABLED_SERVICES+=",$s"
    done
}
function iniset {
    [[ $1 == -sudo ]] && shift
    "$HARNESS_PYTHON" "$HARNESS/iniset.py" "$@"
}
function run_process {
    is_service_enabled "$1" || return 0
    record "run_process|$PHASE|$1|$2|${3:-}|${4:-}"
    # The edge makes its control socket, as the real one does.
    if [[ $1 == ovs-edge && -z ${EDGE_MAKES_NO_SOCKET:-} ]]; then
        "$HARNESS_PYTHON" -c \
            'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
            "$OVS_EDGE_RUN_DIR/control.sock"
    fi
}
function stop_process {
    is_service_enabled "$1" || return 0
    record "stop_process|$PHASE|$1"
}
function setup_develop { record "setup_develop|$PHASE|$1"; }
function install_package { record "install_package|$PHASE|$*"; }
function start_service { record "start_service|$PHASE|$1"; }
function stop_service { record "stop_service|$PHASE|$1"; }
function is_ubuntu { [[ $FAKE_DISTRO == ubuntu ]]; }
function die { echo "die: ${*:2}" >&2; exit 1; }
function echo_summary { :; }
function get_python_exec_prefix { echo "$HARNESS/bin"; }
# Runs what it is given, as root runs it here, but user and group changes.
function sudo {
    record "sudo|$PHASE|$*"
    case $1 in
        groupadd|usermod) ;;
        *) "$@" ;;
    esac
}
# lib/cinder's configure_cinder: the backend functions of
# CINDER_ENABLED_BACKENDS, then the list and the default volume type.
function configure_cinder {
    rm -f "$CINDER_CONF"
    local be be_type be_name enabled="" default=""
    for be in ${CINDER_ENABLED_BACKENDS//,/ }; do
        be_type=${be%%:*}
        be_name=${be##*:}
        if type "configure_cinder_backend_$be_type" >/dev/null 2>&1; then
            "configure_cinder_backend_$be_type" "$be_name"
        fi
        default=${default:-$be_name}
        enabled+=$be_name,
    done
    iniset "$CINDER_CONF" DEFAULT enabled_backends "${enabled%,}"
    iniset "$CINDER_CONF" DEFAULT default_volume_type "$default"
}
'''

# stack.sh's order: override-defaults and settings, pre-install, the
# services' install and configure, install, post-config, then nova and
# cinder start, extra, test-config. unstack.sh and clean.sh source the
# settings again in a process of their own.
STACK = r'''
set -o errexit
source "$HARNESS/standins.sh"
source "$DEVSTACK/override-defaults"
source "$DEVSTACK/settings"
PHASE=pre-install
source "$DEVSTACK/plugin.sh" stack pre-install
PHASE=configure
if is_service_enabled c-vol; then configure_cinder; fi
for PHASE in install post-config; do
    source "$DEVSTACK/plugin.sh" stack "$PHASE"
done
PHASE=start
run_process n-cpu "nova-compute --config-file $NOVA_CPU_CONF"
run_process c-vol "cinder-volume --config-file $CINDER_CONF"
for PHASE in extra test-config; do
    source "$DEVSTACK/plugin.sh" stack "$PHASE"
done
'''

TEARDOWN = r'''
set -o errexit
source "$HARNESS/standins.sh"
source "$DEVSTACK/override-defaults"
source "$DEVSTACK/settings"
PHASE=$1
source "$DEVSTACK/plugin.sh" "$1"
'''

# The project's scripts: their interpreter records what it is asked.
FAKE_PYTHON = r'''#!/bin/bash
if [[ $1 == */ovs-admin ]]; then
    shift
    printf 'ovs-admin|%s\n' "$*" >> "$RECORD"
    [[ -z ${ROUTERS_DO_NOT_ANSWER:-} ]]
    exit
fi
if [[ $1 == - ]]; then
    script=$(cat)
    [[ $script == *"delete(sys.argv[2], recursive=True)"* ]] && what=deletes || what=script
    printf 'python|%s|%s\n' "$what" "${*:2}" >> "$RECORD"
    exit
fi
printf 'python|%s\n' "$*" >> "$RECORD"
'''


class Stack:
    """One DevStack node: its directories, environment and records."""

    def __init__(self, tmp_path, **settings):
        self.top = tmp_path
        harness = tmp_path / 'harness'
        (harness / 'bin').mkdir(parents=True)
        (harness / 'iniset.py').write_text(INISET)
        (harness / 'standins.sh').write_text(STANDINS)
        (harness / 'stack.sh').write_text(STACK)
        (harness / 'teardown.sh').write_text(TEARDOWN)
        python = harness / 'bin' / 'python'
        python.write_text(FAKE_PYTHON)
        admin = harness / 'bin' / 'ovs-admin'
        admin.write_text('#!%s\n' % python)
        for script in (python, admin):
            script.chmod(0o755)
        (tmp_path / 'apparmor').mkdir()
        self.record = tmp_path / 'calls.log'
        self.cinder_conf = tmp_path / 'cinder.conf'
        self.nova_conf = tmp_path / 'nova-cpu.conf'
        self.nova_conf.write_text('[DEFAULT]\ncompute_driver = libvirt.LibvirtDriver\n')
        self.tempest_conf = tmp_path / 'tempest.conf'
        self.conf_dir = tmp_path / 'etc' / 'ovs-edge'
        self.data_dir = tmp_path / 'data' / 'ovs-edge'
        self.run_dir = tmp_path / 'run' / 'ovs-edge'
        self.apparmor = tmp_path / 'apparmor' / 'libvirt-qemu'
        self.bin = harness / 'bin'
        self.env = {
            'PATH': os.environ['PATH'], 'HOME': str(tmp_path),
            'HARNESS': str(harness), 'HARNESS_PYTHON': sys.executable,
            'DEVSTACK': DEVSTACK, 'RECORD': str(self.record), 'FAKE_DISTRO': 'ubuntu',
            'DATA_DIR': str(tmp_path / 'data'), 'HOST_IP': '192.0.2.10',
            'STACK_USER': subprocess.check_output(['id', '-un'], text=True).strip(),
            'CINDER_CONF': str(self.cinder_conf), 'NOVA_CPU_CONF': str(self.nova_conf),
            'TEMPEST_CONFIG': str(self.tempest_conf), 'SERVICE_TIMEOUT': '2',
            'ENABLED_SERVICES': 'key,n-api,n-cpu,n-cond,n-sch,placement-api,g-api,'
                                'c-sch,c-api,c-vol,q-svc,tempest,mysql,rabbit',
            'OVS_ROUTER_ID_PREFIX': 'ctl', 'OVS_EDGE_CONF_DIR': str(self.conf_dir),
            'OVS_EDGE_RUN_DIR': str(self.run_dir), 'OVS_QEMU_USER': 'daemon',
            'OVS_APPARMOR_QEMU_LOCAL': str(self.apparmor),
        }
        self.env.update(settings)

    def run(self, script, *args, check=True):
        result = subprocess.run(['bash', str(self.top / 'harness' / script), *args],
                                env=self.env, capture_output=True, text=True, timeout=120)
        if check:
            assert result.returncode == 0, result.stderr[-3000:]
        return result

    def stack(self, check=True):
        return self.run('stack.sh', check=check)

    def unstack(self):
        return self.run('teardown.sh', 'unstack')

    def clean(self):
        return self.run('teardown.sh', 'clean')

    def calls(self, kind=None):
        lines = self.record.read_text().splitlines() if self.record.exists() else []
        calls = [line.split('|') for line in lines]
        return [c[1:] for c in calls if c[0] == kind] if kind else calls

    def started(self):
        return [(phase, name, command, user)
                for phase, name, command, group, user in self.calls('run_process')]

    def ini(self, path):
        # [DEFAULT] as a section of its own, not folded into the others.
        config = configparser.RawConfigParser(default_section='no default section')
        config.optionxform = str
        assert config.read(path), '%s was not written' % path
        return config


def test_the_plugin_is_shellcheck_clean():
    files = [os.path.join(DEVSTACK, name) for name in ('plugin.sh', 'settings',
                                                       'override-defaults')]
    result = subprocess.run(['shellcheck', '--shell=bash', *files],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_single_node_stack_configures_cinder_and_starts_the_vpool_before_nova(tmp_path):
    node = Stack(tmp_path)
    node.stack()

    # The Cinder backend, first in CINDER_ENABLED_BACKENDS: the default type.
    cinder = node.ini(node.cinder_conf)
    assert cinder['DEFAULT']['enabled_backends'] == 'ovs'
    assert cinder['DEFAULT']['default_volume_type'] == 'ovs'
    assert dict(cinder['ovs']) == {
        'volume_backend_name': 'ovs',
        'volume_driver': 'ovs_cinder.volume.driver.OVSEdgeDriver',
        'ovs_router_endpoints': 'http://192.0.2.10:8765,http://192.0.2.10:8766',
        'ovs_api_token_file': str(node.conf_dir / 'token'),
        'ovs_vpool': 'default',
    }
    # nova-compute and cinder-volume attach through this host's edge (the
    # .pth hook registers the volume type; [ovs_edge] says where the edge is).
    assert dict(cinder['ovs_edge']) == {'control_socket': str(node.run_dir / 'control.sock')}
    nova = node.ini(node.nova_conf)
    assert dict(nova['DEFAULT']) == {'compute_driver': 'libvirt.LibvirtDriver'}
    assert dict(nova['ovs_edge']) == {'control_socket': str(node.run_dir / 'control.sock')}

    # ZooKeeper from the distribution; the project and its registration hook.
    assert node.calls('install_package') == [['pre-install', 'zookeeperd']]
    assert node.calls('setup_develop') == [['install', REPO]]
    assert ['install', '%s/python -m ovs_cinder.autoregister enable' % node.bin] in (
        node.calls('sudo'))

    # Routers, then the edge, all before stack.sh starts nova-compute and
    # cinder-volume; ZooKeeper before the routers, the vPool emptied first.
    assert node.started() == [
        ('post-config', 'ovs-router-1',
         '%s/ovs-router --config-file %s/ovs-router-1.conf' % (node.bin, node.conf_dir), ''),
        ('post-config', 'ovs-router-2',
         '%s/ovs-router --config-file %s/ovs-router-2.conf' % (node.bin, node.conf_dir), ''),
        ('post-config', 'ovs-edge',
         '%s/ovs-edge --config-file %s/ovs-edge.conf' % (node.bin, node.conf_dir), 'root'),
        ('start', 'n-cpu', 'nova-compute --config-file %s' % node.nova_conf, ''),
        ('start', 'c-vol', 'cinder-volume --config-file %s' % node.cinder_conf, ''),
    ]
    order = [c[:2] for c in node.calls()]
    assert (order.index(['start_service', 'post-config'])
            < order.index(['python', 'deletes'])
            < order.index(['run_process', 'post-config']))
    assert node.calls('start_service') == [['post-config', 'zookeeper']]
    assert ['deletes', '127.0.0.1:2181 /ovs/default'] in node.calls('python')
    # Each router answered (to the edge credential) before the edge started,
    # and the status is logged.
    token, edge_token = node.conf_dir / 'token', node.conf_dir / 'edge-token'
    assert node.calls('ovs-admin') == [
        ['--endpoint http://192.0.2.10:8765 --token-file %s routers' % edge_token],
        ['--endpoint http://192.0.2.10:8766 --token-file %s routers' % edge_token],
        ['--endpoint http://192.0.2.10:8765 --token-file %s status' % token],
    ]


def test_router_and_edge_configs_share_one_token_and_one_backend(tmp_path):
    node = Stack(tmp_path)
    node.stack()

    token = node.conf_dir / 'token'
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert len(token.read_text().strip()) == 64
    # The edges' credential is another one, and no way back to the admin's.
    edge_token = node.conf_dir / 'edge-token'
    assert stat.S_IMODE(edge_token.stat().st_mode) == 0o600
    assert len(edge_token.read_text().strip()) == 64
    assert edge_token.read_text() != token.read_text()
    routers = [node.ini(node.conf_dir / ('ovs-router-%d.conf' % n)) for n in (1, 2)]
    assert [dict(r['router']) for r in routers] == [{
        'id': 'ctl-r%d' % n, 'site': 'default', 'vpool': 'default',
        'nbd_host': '192.0.2.10', 'nbd_port': str(10808 + n),
        'api_host': '192.0.2.10', 'api_port': str(8764 + n), 'token_file': str(token),
        'edge_token_file': str(edge_token),
    } for n in (1, 2)]
    for router in routers:
        assert router['zookeeper']['hosts'] == '127.0.0.1:2181'
        assert dict(router['backend']) == {'backend': 'local',
                                           'local_path': str(node.data_dir / 'backend')}
    assert dict(node.ini(node.conf_dir / 'ovs-edge.conf')['edge']) == {
        'site': 'default', 'token_file': str(edge_token),
        'router_endpoints': 'http://192.0.2.10:8765,http://192.0.2.10:8766',
        'control_socket': str(node.run_dir / 'control.sock'),
        'socket_dir': str(node.run_dir / 'volumes'), 'socket_group': 'ovs-edge',
        'state_dir': str(node.data_dir / 'edge'),
    }
    assert stat.S_IMODE(node.run_dir.stat().st_mode) == 0o711

    # The socket group, with the stack user and QEMU's user in it, and
    # AppArmor letting QEMU open the volumes' sockets.
    privileged = [c[1] for c in node.calls('sudo')]
    assert 'groupadd --system ovs-edge' in privileged
    assert 'usermod -a -G ovs-edge %s' % node.env['STACK_USER'] in privileged
    assert 'usermod -a -G ovs-edge daemon' in privileged
    assert node.apparmor.read_text() == '%s/volumes/** rw,\n' % node.run_dir


def test_restack_keeps_the_apparmor_rule_once_and_a_given_token(tmp_path):
    node = Stack(tmp_path, OVS_API_TOKEN='s3cr3t-token')
    node.stack()
    node.unstack()
    node.stack()
    assert node.apparmor.read_text().count('rw,') == 1
    assert (node.conf_dir / 'token').read_text() == 's3cr3t-token\n'


def test_tempest_is_told_what_the_driver_supports(tmp_path):
    node = Stack(tmp_path)
    node.stack()
    tempest = node.ini(node.tempest_conf)
    assert dict(tempest['volume-feature-enabled']) == {
        'snapshot': 'True', 'clone': 'True', 'extend_attached_volume': 'True',
        'manage_volume': 'True', 'volume_revert': 'True',
        'manage_snapshot': 'False', 'backup': 'False'}
    assert tempest['volume']['storage_protocol'] == 'nbd'
    assert tempest['volume']['vendor_name'] == 'OVS Edge'


def test_unstack_stops_the_services_and_clean_removes_the_data(tmp_path):
    node = Stack(tmp_path)
    node.stack()
    (node.data_dir / 'backend' / 'vol').mkdir(parents=True)

    node.unstack()
    assert node.calls('stop_process') == [['unstack', 'ovs-edge'],
                                          ['unstack', 'ovs-router-1'],
                                          ['unstack', 'ovs-router-2']]
    assert node.calls('stop_service') == []  # ZooKeeper only with unstack.sh --all
    assert not node.run_dir.exists()
    assert node.data_dir.exists()

    node.env['UNSTACK_ALL'] = 'True'
    node.unstack()
    assert node.calls('stop_service') == [['unstack', 'zookeeper']]

    node.clean()
    assert not node.data_dir.exists()
    assert not node.conf_dir.exists()
    assert ['clean', '%s/python -m ovs_cinder.autoregister disable' % node.bin] in (
        node.calls('sudo'))
    assert node.apparmor.read_text() == ''


def test_an_external_zookeeper_ensemble_is_used_as_it_is(tmp_path):
    node = Stack(tmp_path, OVS_ZOOKEEPER_HOSTS='zk1:2181,zk2:2181', FAKE_DISTRO='fedora')
    node.stack()
    assert node.calls('install_package') == []
    assert node.calls('start_service') == []
    assert node.ini(node.conf_dir / 'ovs-router-1.conf')['zookeeper']['hosts'] == (
        'zk1:2181,zk2:2181')
    node.env['UNSTACK_ALL'] = 'True'
    node.unstack()
    assert node.calls('stop_service') == []


def test_without_an_ensemble_zookeeper_comes_from_debian_or_ubuntu_only(tmp_path):
    result = Stack(tmp_path, FAKE_DISTRO='fedora').stack(check=False)
    assert result.returncode != 0
    assert 'set OVS_ZOOKEEPER_HOSTS' in result.stderr


COMPUTE_ONLY = 'n-cpu,placement-client,q-agt'


def test_a_compute_only_node_runs_just_the_edge_pointed_at_the_controller(tmp_path):
    controller = Stack(tmp_path / 'controller', OVS_API_TOKEN='ctl-token')
    controller.stack()
    node = Stack(tmp_path, ENABLED_SERVICES=COMPUTE_ONLY, OVS_API_TOKEN='ctl-token',
                 OVS_ROUTER_ENDPOINTS='http://192.0.2.10:8765,http://192.0.2.10:8766')
    node.stack()

    assert node.started() == [
        ('post-config', 'ovs-edge',
         '%s/ovs-edge --config-file %s/ovs-edge.conf' % (node.bin, node.conf_dir), 'root'),
        ('start', 'n-cpu', 'nova-compute --config-file %s' % node.nova_conf, ''),
    ]
    assert node.calls('install_package') == []
    assert node.calls('start_service') == []
    assert not [c for c in node.calls('python') if c[0] == 'deletes']
    assert not node.cinder_conf.exists()
    assert dict(node.ini(node.nova_conf)['ovs_edge']) == {
        'control_socket': str(node.run_dir / 'control.sock')}
    # A hypervisor holds the edge credential only, the controller's own.
    assert sorted(os.listdir(node.conf_dir)) == ['edge-token', 'ovs-edge.conf']
    assert (node.conf_dir / 'edge-token').read_text() == (
        controller.conf_dir / 'edge-token').read_text()
    assert ['install', '%s/python -m ovs_cinder.autoregister enable' % node.bin] in (
        node.calls('sudo'))
    # The controller's routers must answer (to the edge credential) before
    # the edge starts.
    edge_token = node.conf_dir / 'edge-token'
    assert node.calls('ovs-admin') == [
        ['--endpoint http://192.0.2.10:8765 --token-file %s routers' % edge_token],
        ['--endpoint http://192.0.2.10:8766 --token-file %s routers' % edge_token],
    ]
    assert not node.tempest_conf.exists()

    node.unstack()
    assert node.calls('stop_process') == [['unstack', 'ovs-edge']]


@pytest.mark.parametrize('missing, message', [
    ('OVS_ROUTER_ENDPOINTS', 'set OVS_ROUTER_ENDPOINTS'),
    ('OVS_API_TOKEN', 'set OVS_EDGE_TOKEN (or OVS_API_TOKEN)'),
])
def test_a_compute_only_node_must_be_told_the_routers_and_token(tmp_path, missing, message):
    settings = {'OVS_API_TOKEN': 'ctl-token', 'OVS_ROUTER_ENDPOINTS': 'http://192.0.2.10:8765'}
    del settings[missing]
    result = Stack(tmp_path, ENABLED_SERVICES=COMPUTE_ONLY, **settings).stack(check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith('die:')]) == 1


def test_a_compute_only_node_with_the_edge_credential_alone(tmp_path):
    node = Stack(tmp_path, ENABLED_SERVICES=COMPUTE_ONLY, OVS_EDGE_TOKEN='edge-only',
                 OVS_ROUTER_ENDPOINTS='http://192.0.2.10:8765')
    node.stack()
    assert sorted(os.listdir(node.conf_dir)) == ['edge-token', 'ovs-edge.conf']
    assert (node.conf_dir / 'edge-token').read_text() == 'edge-only\n'


def test_tls_turns_on_https_and_nbd_tls_with_one_ca(tmp_path):
    node = Stack(tmp_path, OVS_TLS='True')
    node.stack()
    tls = node.conf_dir / 'tls'
    assert ['-m ovs_daemon.devcluster.certificates --dir %s --name router '
            '--host 192.0.2.10 --host localhost' % tls] in node.calls('python')
    ca = str(tls / 'ca-cert.pem')
    endpoints = 'https://192.0.2.10:8765,https://192.0.2.10:8766'
    for n in (1, 2):
        router = node.ini(node.conf_dir / ('ovs-router-%d.conf' % n))
        assert dict(router['ssl']) == {
            'cert_file': str(tls / 'router-cert.pem'), 'key_file': str(tls / 'router-key.pem'),
            'ca_file': ca, 'nbd_require_tls': 'True'}
    edge = node.ini(node.conf_dir / 'ovs-edge.conf')
    assert edge['edge']['router_endpoints'] == endpoints
    assert dict(edge['ssl']) == {'ca_file': ca}
    cinder = node.ini(node.cinder_conf)['ovs']
    assert (cinder['ovs_router_endpoints'], cinder['ovs_ssl_ca_file']) == (endpoints, ca)
    assert node.calls('ovs-admin')[0] == [
        '--endpoint https://192.0.2.10:8765 --token-file %s --ca-file %s routers'
        % (node.conf_dir / 'edge-token', ca)]


def test_a_compute_only_node_with_tls_needs_the_ca(tmp_path):
    result = Stack(tmp_path, ENABLED_SERVICES=COMPUTE_ONLY, OVS_TLS='True',
                   OVS_API_TOKEN='ctl-token',
                   OVS_ROUTER_ENDPOINTS='https://192.0.2.10:8765').stack(check=False)
    assert result.returncode != 0
    assert 'copy the router node\'s CA certificate' in result.stderr


def test_stack_fails_when_a_router_does_not_answer(tmp_path):
    result = Stack(tmp_path, ROUTERS_DO_NOT_ANSWER='1').stack(check=False)
    assert result.returncode != 0
    assert 'The storage router at http://192.0.2.10:8765 does not answer' in result.stderr


def test_stack_fails_when_the_edge_makes_no_socket(tmp_path):
    result = Stack(tmp_path, EDGE_MAKES_NO_SOCKET='1').stack(check=False)
    assert result.returncode != 0
    assert 'The edge made no control socket' in result.stderr


@pytest.mark.parametrize('backends, enabled, default, section', [
    ('lvm:lvmdriver-1', 'ovs,lvmdriver-1', 'ovs', 'ovs'),
    ('lvm:lvmdriver-1,ovs:fast', 'lvmdriver-1,fast', 'lvmdriver-1', 'fast'),
])
def test_the_ovs_backend_is_added_to_a_given_backend_list(tmp_path, backends, enabled,
                                                          default, section):
    node = Stack(tmp_path, CINDER_ENABLED_BACKENDS=backends)
    node.stack()
    cinder = node.ini(node.cinder_conf)
    assert cinder['DEFAULT']['enabled_backends'] == enabled
    assert cinder['DEFAULT']['default_volume_type'] == default
    assert cinder[section]['volume_driver'] == 'ovs_cinder.volume.driver.OVSEdgeDriver'
    assert cinder[section]['volume_backend_name'] == section
    # lvm's own section is lib/cinder_backends/lvm's business.
    assert not cinder.has_section('lvmdriver-1')

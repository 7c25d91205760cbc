# shellcheck shell=bash
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

# DevStack plugin of OVS Edge: storage routers, ZooKeeper, the edge and the
# Cinder backend "ovs" (settings: devstack/settings).
#
# Where each phase falls in stack.sh, and so what goes in it:
#   pre-install  system packages (ZooKeeper)
#   (stack.sh)   install_cinder, configure_cinder: lib/cinder calls
#                configure_cinder_backend_ovs below for "ovs:<name>" in
#                CINDER_ENABLED_BACKENDS; install_nova installs libvirt
#   install      this project, and the hook that registers the volume type
#                in nova-compute and cinder
#   (stack.sh)   init_cinder, init_nova
#   post-config  configs, ZooKeeper, routers and edge started: stack.sh
#                starts nova-compute and cinder-volume right after this
#                phase (start_nova, start_cinder), and both need the edge,
#                cinder-volume the routers too
#   extra        the vPool at a glance, in the log
#   test-config  tempest's volume-feature-enabled flags

# Save trace setting
_XTRACE_OVS_EDGE=$(set +o | grep xtrace)
set -o xtrace

# Cinder backend
# --------------

# configure_cinder_backend_ovs - the backend's section of cinder.conf
# configure_cinder_backend_ovs $name
function configure_cinder_backend_ovs {
    local be_name=$1
    iniset "$CINDER_CONF" "$be_name" volume_backend_name "$be_name"
    iniset "$CINDER_CONF" "$be_name" volume_driver ovs_cinder.volume.driver.OVSEdgeDriver
    iniset "$CINDER_CONF" "$be_name" ovs_router_endpoints "$(ovs_router_endpoints)"
    iniset "$CINDER_CONF" "$be_name" ovs_api_token_file "$OVS_TOKEN_FILE"
    iniset "$CINDER_CONF" "$be_name" ovs_vpool "$OVS_VPOOL"
    if [[ $OVS_TLS == True ]]; then
        iniset "$CINDER_CONF" "$be_name" ovs_ssl_ca_file "$OVS_TLS_CA_FILE"
    fi
    # cinder-volume attaches volumes for image copies through this host's edge.
    iniset "$CINDER_CONF" ovs_edge control_socket "$OVS_EDGE_RUN_DIR/control.sock"
}

# Helpers
# -------

# ovs_router_endpoints - the routers' control API URLs, comma-separated
function ovs_router_endpoints {
    if [[ -n $OVS_ROUTER_ENDPOINTS ]]; then
        echo "$OVS_ROUTER_ENDPOINTS"
        return
    fi
    local host=$OVS_ROUTER_HOST n urls=() scheme=http
    if [[ $host == *:* ]]; then
        host="[$host]"
    fi
    if [[ $OVS_TLS == True ]]; then
        scheme=https
    fi
    for n in $(ovs_router_numbers); do
        urls+=("$scheme://$host:$((OVS_ROUTER_API_PORT_BASE + n - 1))")
    done
    local IFS=,
    echo "${urls[*]}"
}

function _ovs_zookeeper_hosts {
    echo "${OVS_ZOOKEEPER_HOSTS:-127.0.0.1:2181}"
}

function _ovs_bin {
    echo "$(get_python_exec_prefix)/$1"
}

# _ovs_python - the interpreter setup_develop installed this project for,
# read from one of its scripts: the one that runs nova and cinder too
function _ovs_python {
    local shebang
    read -r shebang < "$(_ovs_bin ovs-admin)"
    echo "${shebang#\#!}"
}

# _ovs_admin_token - the admin credential as configured, or empty
function _ovs_admin_token {
    echo "${OVS_API_TOKEN:-${SERVICE_PASSWORD:-}}"
}

# _ovs_tls_args - ovs-admin's options to verify HTTPS routers
function _ovs_tls_args {
    if [[ $OVS_TLS == True ]]; then
        echo "--ca-file $OVS_TLS_CA_FILE"
    fi
}

# Fail at pre-install rather than half-way: a node without routers uses
# somebody else's, and must be told where and with which token.
function _ovs_check_settings {
    if is_service_enabled ovs-edge && ! is_service_enabled ovs-router; then
        if [[ -z $OVS_ROUTER_ENDPOINTS ]]; then
            die $LINENO "This node runs no storage router: set OVS_ROUTER_ENDPOINTS to the controller's"
        fi
        if [[ -z $OVS_EDGE_TOKEN && -z $(_ovs_admin_token) ]]; then
            die $LINENO "This node runs no storage router: set OVS_EDGE_TOKEN (or OVS_API_TOKEN) to the controller's"
        fi
        if [[ $OVS_TLS == True && ! -r $OVS_TLS_CA_FILE ]]; then
            die $LINENO "OVS_TLS: copy the router node's CA certificate to $OVS_TLS_CA_FILE"
        fi
    fi
    if is_service_enabled ovs-router && [[ -z $OVS_ZOOKEEPER_HOSTS ]] && ! is_ubuntu; then
        die $LINENO "ZooKeeper is installed from Debian or Ubuntu packages only: set OVS_ZOOKEEPER_HOSTS"
    fi
}

function install_ovs_edge {
    setup_develop "$OVS_EDGE_DIR"
    # nova and os-brick have no plugin hook for a volume type: a .pth file
    # in their Python registers it, in nova-compute, cinder-volume and
    # cinder-backup only, right after they import os-brick's connector and
    # nova's libvirt driver (see ovs_cinder/autoregister.py). A wrapper
    # around nova-compute would not survive lib/nova rewriting its unit, and
    # registering from cinder's driver alone would miss the other backends'
    # processes, which attach ovs volumes too (migration, backup).
    sudo "$(_ovs_python)" -m ovs_cinder.autoregister enable
}

# _ovs_write_token - the admin credential where routers or cinder-volume
# run, and the edge credential, readable by the stack user (routers,
# cinder-volume) and root (the edge) only. A compute-only node gets the
# edge credential alone: a compromised hypervisor must not hold the admin's.
function _ovs_write_token {
    local token
    token=$(_ovs_admin_token)
    if is_service_enabled ovs-router c-vol; then
        if [[ -z $token && -s $OVS_TOKEN_FILE ]]; then
            token=$(head -n 1 "$OVS_TOKEN_FILE")
        fi
        if [[ -z $token ]]; then
            token=$(openssl rand -hex 32)
        fi
        (umask 077 && printf '%s\n' "$token" > "$OVS_TOKEN_FILE")
    else
        rm -f "$OVS_TOKEN_FILE"
    fi
    local edge_token=${OVS_EDGE_TOKEN:-$(printf 'ovs-edge credential:%s' "$token" | sha256sum | cut -d' ' -f1)}
    (umask 077 && printf '%s\n' "$edge_token" > "$OVS_EDGE_TOKEN_FILE")
}

# _ovs_make_certificates - a CA in OVS_TLS_DIR (made once, kept across
# stacks) and this router node's certificate for OVS_ROUTER_HOST
function _ovs_make_certificates {
    "$(_ovs_python)" -m ovs_daemon.devcluster.certificates --dir "$OVS_TLS_DIR" \
        --name router --host "$OVS_ROUTER_HOST" --host localhost >/dev/null
}

function _ovs_write_router_configs {
    local n conf
    for n in $(ovs_router_numbers); do
        conf=$OVS_EDGE_CONF_DIR/ovs-router-$n.conf
        rm -f "$conf"
        iniset "$conf" router id "$OVS_ROUTER_ID_PREFIX-r$n"
        iniset "$conf" router site "$OVS_SITE"
        iniset "$conf" router vpool "$OVS_VPOOL"
        iniset "$conf" router nbd_host "$OVS_ROUTER_HOST"
        iniset "$conf" router nbd_port $((OVS_ROUTER_NBD_PORT_BASE + n - 1))
        iniset "$conf" router api_host "$OVS_ROUTER_HOST"
        iniset "$conf" router api_port $((OVS_ROUTER_API_PORT_BASE + n - 1))
        iniset "$conf" router token_file "$OVS_TOKEN_FILE"
        iniset "$conf" router edge_token_file "$OVS_EDGE_TOKEN_FILE"
        iniset "$conf" zookeeper hosts "$(_ovs_zookeeper_hosts)"
        # The local backend: one directory shared by this node's routers.
        iniset "$conf" backend backend local
        iniset "$conf" backend local_path "$OVS_EDGE_DATA_DIR/backend"
        if [[ $OVS_TLS == True ]]; then
            iniset "$conf" ssl cert_file "$OVS_TLS_DIR/router-cert.pem"
            iniset "$conf" ssl key_file "$OVS_TLS_DIR/router-key.pem"
            iniset "$conf" ssl ca_file "$OVS_TLS_CA_FILE"
            iniset "$conf" ssl nbd_require_tls True
        fi
    done
}

function _ovs_write_edge_config {
    local conf=$OVS_EDGE_CONF_DIR/ovs-edge.conf
    rm -f "$conf"
    iniset "$conf" edge site "$OVS_SITE"
    iniset "$conf" edge router_endpoints "$(ovs_router_endpoints)"
    iniset "$conf" edge token_file "$OVS_EDGE_TOKEN_FILE"
    iniset "$conf" edge control_socket "$OVS_EDGE_RUN_DIR/control.sock"
    iniset "$conf" edge socket_dir "$OVS_EDGE_RUN_DIR/volumes"
    iniset "$conf" edge state_dir "$OVS_EDGE_DATA_DIR/edge"
    iniset "$conf" edge socket_group "$OVS_EDGE_SOCKET_GROUP"
    if [[ $OVS_TLS == True ]]; then
        iniset "$conf" ssl ca_file "$OVS_TLS_CA_FILE"
    fi
}

# _ovs_share_sockets - the edge runs as root; nova-compute and cinder-volume
# run as the stack user and QEMU as OVS_QEMU_USER: all reach its sockets
# through OVS_EDGE_SOCKET_GROUP. Done before those services start, so their
# processes get the group.
function _ovs_share_sockets {
    if ! getent group "$OVS_EDGE_SOCKET_GROUP" >/dev/null; then
        sudo groupadd --system "$OVS_EDGE_SOCKET_GROUP"
    fi
    sudo usermod -a -G "$OVS_EDGE_SOCKET_GROUP" "$STACK_USER"
    # libvirt (installed with nova-compute) brings the QEMU user.
    if getent passwd "$OVS_QEMU_USER" >/dev/null; then
        sudo usermod -a -G "$OVS_EDGE_SOCKET_GROUP" "$OVS_QEMU_USER"
    fi
    local rule="$OVS_EDGE_RUN_DIR/volumes/** rw,"
    if [[ -d $(dirname "$OVS_APPARMOR_QEMU_LOCAL") ]] \
            && ! sudo grep -qxF "$rule" "$OVS_APPARMOR_QEMU_LOCAL" 2>/dev/null; then
        echo "$rule" | sudo tee -a "$OVS_APPARMOR_QEMU_LOCAL" >/dev/null
    fi
}

# _ovs_reset_vpool - an empty vPool for a fresh Cinder database: its
# ZooKeeper records and its local backend
function _ovs_reset_vpool {
    sudo rm -rf "$OVS_EDGE_DATA_DIR/backend"
    "$(_ovs_python)" - "$(_ovs_zookeeper_hosts)" "/ovs/$OVS_VPOOL" <<'EOF'
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1])
zk.start(timeout=60)
zk.delete(sys.argv[2], recursive=True)
zk.stop()
EOF
}

# _ovs_wait_for_routers - until each router answers, or die. With the edge
# credential, which every node has (a compute-only node has no other).
function _ovs_wait_for_routers {
    local endpoint deadline=$((SECONDS + ${SERVICE_TIMEOUT:-60}))
    for endpoint in ${1//,/ }; do
        # shellcheck disable=SC2046
        until "$(_ovs_bin ovs-admin)" --endpoint "$endpoint" \
                --token-file "$OVS_EDGE_TOKEN_FILE" $(_ovs_tls_args) routers >/dev/null; do
            if ((SECONDS >= deadline)); then
                die $LINENO "The storage router at $endpoint does not answer"
            fi
            sleep 1
        done
    done
}

function _ovs_wait_for_edge {
    local deadline=$((SECONDS + ${SERVICE_TIMEOUT:-60}))
    until sudo test -S "$OVS_EDGE_RUN_DIR/control.sock"; do
        if ((SECONDS >= deadline)); then
            die $LINENO "The edge made no control socket at $OVS_EDGE_RUN_DIR/control.sock"
        fi
        sleep 1
    done
}

function configure_ovs_edge {
    sudo install -d -o "$STACK_USER" -m 0750 "$OVS_EDGE_CONF_DIR" "$OVS_EDGE_DATA_DIR"
    # Traversable, not listable: access is decided on each socket.
    sudo install -d -m 0711 "$OVS_EDGE_RUN_DIR"
    _ovs_write_token
    if is_service_enabled ovs-router; then
        if [[ $OVS_TLS == True ]]; then
            _ovs_make_certificates
        fi
        _ovs_write_router_configs
    fi
    if is_service_enabled ovs-edge; then
        _ovs_write_edge_config
        _ovs_share_sockets
        if is_service_enabled n-cpu; then
            # nova-compute attaches volumes through this host's edge.
            iniset "$NOVA_CPU_CONF" ovs_edge control_socket "$OVS_EDGE_RUN_DIR/control.sock"
        fi
    fi
}

function start_ovs_edge {
    if is_service_enabled ovs-router; then
        if [[ -z $OVS_ZOOKEEPER_HOSTS ]]; then
            start_service zookeeper
        fi
        _ovs_reset_vpool
        local n
        for n in $(ovs_router_numbers); do
            run_process "ovs-router-$n" \
                "$(_ovs_bin ovs-router) --config-file $OVS_EDGE_CONF_DIR/ovs-router-$n.conf"
        done
    fi
    _ovs_wait_for_routers "$(ovs_router_endpoints)"
    if is_service_enabled ovs-edge; then
        # root: it hands its sockets to OVS_EDGE_SOCKET_GROUP.
        run_process ovs-edge \
            "$(_ovs_bin ovs-edge) --config-file $OVS_EDGE_CONF_DIR/ovs-edge.conf" "" root
        _ovs_wait_for_edge
    fi
}

function stop_ovs_edge {
    local n
    stop_process ovs-edge
    for n in $(ovs_router_numbers); do
        stop_process "ovs-router-$n"
    done
    # Like stack.sh's database and message queue: only for unstack.sh --all.
    if is_service_enabled ovs-router && [[ -z $OVS_ZOOKEEPER_HOSTS && -n ${UNSTACK_ALL:-} ]]; then
        stop_service zookeeper
    fi
    sudo rm -rf "$OVS_EDGE_RUN_DIR"
}

function cleanup_ovs_edge {
    if [[ -x $(_ovs_bin ovs-admin) ]]; then
        sudo "$(_ovs_python)" -m ovs_cinder.autoregister disable
    fi
    sudo rm -rf "$OVS_EDGE_DATA_DIR" "$OVS_EDGE_CONF_DIR" "$OVS_EDGE_RUN_DIR"
    if [[ -f $OVS_APPARMOR_QEMU_LOCAL ]]; then
        sudo sed -i "\\|^$OVS_EDGE_RUN_DIR/volumes/\\*\\* rw,\$|d" "$OVS_APPARMOR_QEMU_LOCAL"
    fi
}

function configure_tempest_ovs_edge {
    local flag
    # What OVSEdgeDriver implements; it has no snapshot manage and no backup
    # driver of its own.
    for flag in snapshot clone extend_attached_volume manage_volume volume_revert; do
        iniset "$TEMPEST_CONFIG" volume-feature-enabled "$flag" True
    done
    for flag in manage_snapshot backup; do
        iniset "$TEMPEST_CONFIG" volume-feature-enabled "$flag" False
    done
    # The backend's capabilities, which tempest puts in a volume type's
    # extra specs for the scheduler to match.
    iniset "$TEMPEST_CONFIG" volume storage_protocol nbd
    iniset "$TEMPEST_CONFIG" volume vendor_name "OVS Edge"
    # A volume unmanaged by the driver keeps its backend name.
    iniset "$TEMPEST_CONFIG" volume manage_volume_ref "source-name,volume-%s"
}

# Dispatcher
# ----------

if [[ $1 == stack && $2 == pre-install ]]; then
    _ovs_check_settings
    if is_service_enabled ovs-router && [[ -z $OVS_ZOOKEEPER_HOSTS ]]; then
        echo_summary "Installing ZooKeeper for OVS Edge"
        install_package zookeeperd
    fi
elif [[ $1 == stack && $2 == install ]]; then
    echo_summary "Installing OVS Edge"
    install_ovs_edge
elif [[ $1 == stack && $2 == post-config ]] && is_service_enabled ovs-router ovs-edge; then
    echo_summary "Configuring and starting OVS Edge"
    configure_ovs_edge
    start_ovs_edge
elif [[ $1 == stack && $2 == extra ]]; then
    if is_service_enabled ovs-router; then
        # shellcheck disable=SC2046
        "$(_ovs_bin ovs-admin)" --endpoint "$(ovs_router_endpoints | cut -d, -f1)" \
            --token-file "$OVS_TOKEN_FILE" $(_ovs_tls_args) status
    fi
elif [[ $1 == stack && $2 == test-config ]]; then
    if is_service_enabled tempest && is_service_enabled ovs-router; then
        configure_tempest_ovs_edge
    fi
fi

if [[ $1 == unstack ]]; then
    stop_ovs_edge
fi

if [[ $1 == clean ]]; then
    cleanup_ovs_edge
fi

# Restore xtrace
$_XTRACE_OVS_EDGE

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

"""Options of the storage router: its identity and addresses, ZooKeeper,
the backend and the engine's tuning.

Published through the ``oslo.config.opts`` entry point, so
``oslo-config-generator --namespace ovs_daemon`` writes the sample.
"""

from oslo_config import cfg

from ovs_daemon import tls
from ovs_daemon.backends import base
from ovs_daemon.backends import local
from ovs_daemon.backends import s3
from ovs_daemon.backends import s3_calls
from ovs_daemon.engine import compaction
from ovs_daemon.engine import read_cache
from ovs_daemon.engine import volume

router_opts = [
    cfg.StrOpt('id', required=True,
               help='This router\'s id, unique in the vPool (letters, digits, '
                    '"-", "_", "."). Volumes name their owner by it.'),
    cfg.StrOpt('site', default='default',
               help='Failure domain of this router (a rack, a room). Edges '
                    'fail over to routers of their own site first.'),
    cfg.StrOpt('vpool', default='default',
               help='The vPool: routers of one vPool share a backend and a '
                    'ZooKeeper path (/ovs/<vpool>).'),
    cfg.HostAddressOpt('nbd_host', default='127.0.0.1',
                       help='Address the NBD data plane listens on.'),
    cfg.PortOpt('nbd_port', default=10809,
                help='TCP port of the NBD data plane (0: any free port).'),
    cfg.HostAddressOpt('api_host', default='127.0.0.1',
                       help='Address the control API listens on (HTTPS when '
                    '[ssl] cert_file is set).'),
    cfg.PortOpt('api_port', default=8765,
                help='TCP port of the control API (0: any free port).'),
    cfg.HostAddressOpt('advertise_host',
                       help='Address other routers, edges and the Cinder '
                            'driver use to reach this router; defaults to '
                            'nbd_host and api_host.'),
    cfg.StrOpt('token_file', required=True,
               help='File holding the admin credential of the control API, '
                    'shared by the routers, the Cinder driver and ovs-admin '
                    '(every call; also signs the short-lived credentials of '
                    'tools\' NBD sessions). One token a line: every line is '
                    'accepted, clients send the first, so a rotation keeps two '
                    'valid at once; the file is read again when it changes. '
                    'Mode 0600 (or 0640 for the service\'s group), checked at '
                    'start-up.'),
    cfg.StrOpt('edge_token_file',
               help='File holding the edge credential: the edges\' token_file. '
                    'It may only list the routers, locate volumes and acquire '
                    'one in failover mode with a current attachment token. '
                    'Same format and checks as token_file. Unset: edges cannot '
                    'call the control API.'),
    cfg.FloatOpt('peer_timeout', default=1.0, min=0.05,
                 help='Seconds to wait for another router to connect, and '
                      'to answer a health check before a handover, before it '
                      'counts as unreachable (failover acquire then steals '
                      'the volume).'),
    cfg.FloatOpt('read_lease', default=1.0, min=0.1,
                 help='Seconds of the read lease of a multiattach volume: its '
                      'owner answers reads only within this long of a '
                      'ZooKeeper read showing it as the owner (renewed four '
                      'times per lease), and a router that steals such a '
                      'volume serves it only after this long, so that an '
                      'owner cut off from everyone but one host serves no '
                      'stale read. Must be shorter than [zookeeper] '
                      'session_timeout.'),
    cfg.FloatOpt('handover_timeout', default=10.0, min=0.1,
                 help='Seconds an owner may take to flush and release a '
                      'volume it hands over.'),
    cfg.FloatOpt('drain_timeout', default=30.0, min=0.0,
                 help='Seconds a router stopping on SIGTERM spends handing '
                      'the volumes it owns over to live peers (its site '
                      'first), so that edges follow them with a handover\'s '
                      'pause; after that it stops anyway, flushing and '
                      'keeping the rest. 0: no handover (a restarted router '
                      'takes its volumes back). Keep it below systemd\'s '
                      'TimeoutStopSec.'),
    cfg.FloatOpt('forward_timeout', default=60.0, min=1.0,
                 help='Seconds to wait for the owner when a control call is '
                      'forwarded to it.'),
    cfg.IntOpt('max_unflushed_mib', default=64, min=1,
               help='Unflushed data a volume may hold before the router '
                    'starts a flush of its own in the background; writes '
                    'wait for that flush once twice this much is unflushed, '
                    'so a volume holds at most twice this in memory.'),
    cfg.IntOpt('io_threads', default=8, min=1,
               help='Worker threads for backend and ZooKeeper calls.'),
    cfg.FloatOpt('collect_interval', default=300.0, min=1.0,
                 help='Seconds between garbage collection rounds over the '
                      'volumes this router owns.'),
]

zookeeper_opts = [
    cfg.StrOpt('hosts', default='127.0.0.1:2181',
               help='ZooKeeper ensemble, "host:port,host:port,...".'),
    cfg.FloatOpt('session_timeout', default=6.0, min=1.0,
                 help='ZooKeeper session timeout in seconds. A router cut '
                      'off for longer halts its volumes; its volumes can be '
                      'stolen once its session expired, or at once when it '
                      'does not answer its peers.'),
    cfg.FloatOpt('connect_timeout', default=15.0, min=1.0,
                 help='Seconds to wait for ZooKeeper at start-up.'),
    cfg.FloatOpt('reconnect_max_delay', default=0.25, min=0.01,
                 help='Longest pause, in seconds, between two attempts to '
                      'reconnect to ZooKeeper (up to 40%% more, for jitter). '
                      'IO held while the session is suspended resumes about '
                      'this long after ZooKeeper serves again, whatever the '
                      'outage lasted.'),
]

backend_opts = [
    cfg.StrOpt('backend', default='local', choices=['local', 's3'],
               help='Where volumes are stored. "local": a directory on this '
                    'host, shared by the routers running here. "s3": an '
                    'S3-compatible object store with conditional writes '
                    '(AWS S3, MinIO, Ceph RGW, R2), shared by the routers '
                    'of the vPool on any host.'),
    cfg.StrOpt('local_path', default='/var/lib/ovs-edge/backend',
               help='Directory of the local backend.'),
    cfg.URIOpt('s3_endpoint_url', schemes=['http', 'https'],
               help='Endpoint of the S3 store, e.g. https://rgw.example:7480. '
                    'Unset: AWS S3 of s3_region.'),
    cfg.StrOpt('s3_region',
               help='Region of the S3 store; unset: boto3\'s default.'),
    cfg.StrOpt('s3_bucket',
               help='Bucket of the vPool (must exist). Required with '
                    'backend = s3.'),
    cfg.StrOpt('s3_prefix', default='',
               help='Key prefix of this vPool in the bucket, e.g. "vpool1/"; '
                    'vPools sharing a bucket need distinct prefixes. A "/" '
                    'is added when missing.'),
    cfg.StrOpt('s3_access_key', secret=True,
               help='Access key id. Unset: boto3\'s standard credential '
                    'chain (environment, shared credentials file, instance '
                    'role).'),
    cfg.StrOpt('s3_secret_key', secret=True,
               help='Secret access key, with s3_access_key.'),
    cfg.IntOpt('s3_multipart_threshold_mib', default=64, min=5,
               help='Objects of this size or more are uploaded in parts.'),
    cfg.IntOpt('s3_multipart_chunk_mib', default=16, min=5,
               help='Size of each part of a multipart upload.'),
    cfg.IntOpt('s3_max_attempts', default=6, min=1,
               help='Attempts of a request failing with a transient error '
                    '(5xx, timeout, lost connection) before giving up. A '
                    'conditional write whose outcome is unknown is read '
                    'back before it is tried again; a 412 is never retried.'),
    cfg.FloatOpt('s3_retry_base_delay', default=0.05, min=0.0,
                 help='Seconds of the first retry\'s backoff; it doubles '
                      'with each attempt, with jitter.'),
    cfg.FloatOpt('s3_retry_max_delay', default=2.0, min=0.0,
                 help='Longest backoff between two attempts, in seconds.'),
    cfg.FloatOpt('s3_connect_timeout', default=5.0, min=0.1,
                 help='Seconds to wait for a connection to the store.'),
    cfg.FloatOpt('s3_read_timeout', default=30.0, min=0.1,
                 help='Seconds to wait for the store to answer a request.'),
]

engine_opts = [
    cfg.IntOpt('container_size_mib', default=8, min=1, max=256,
               help='Size of the container objects writes are packed into.'),
    cfg.IntOpt('checkpoint_every_records', default=256, min=1,
               help='Write a checkpoint of the block map after this many '
                    'log records, bounding the log a restart replays.'),
    cfg.IntOpt('checkpoint_every_mib', default=64, min=1,
               help='Write a checkpoint after this many MiB of log records.'),
    cfg.FloatOpt('compaction_threshold', default=0.5, min=0.0, max=1.0,
                 help='Each collection round rewrites the containers of which '
                      'less than this fraction is live data into new ones, '
                      'so overwritten data stops taking space: stored bytes '
                      'stay near live / threshold at worst. 0 turns '
                      'compaction off.'),
    cfg.IntOpt('compaction_mib_per_second', default=32, min=0,
               help='Backend traffic (read and written) compaction may use, '
                    'per router, in MiB/s; 0: unbounded. It runs in one '
                    'thread at the lowest CPU and IO priority.'),
    cfg.StrOpt('read_cache_path',
               help='Directory on this router\'s local disk for a read cache '
                    'of backend data (worth it on s3, where every uncached '
                    'read is a GET). Unset: no cache. Its entries never go '
                    'stale, so it stays valid across restarts and '
                    'handovers.'),
    cfg.IntOpt('read_cache_mib', default=1024, min=1,
               help='Size of the read cache; the least recently used data '
                    'goes first.'),
    cfg.IntOpt('read_cache_readahead_kib', default=32768, min=0,
               help='How far ahead of a sequential reader the read cache '
                    'fetches, in the background; 0: no prefetch.'),
    cfg.IntOpt('read_cache_prefetch_requests', default=4, min=1,
               help='Backend reads the read cache\'s prefetch runs at once '
                    '(each of up to 8 MiB), for all volumes of the router.'),
]


def register_router_opts(conf):
    conf.register_opts(router_opts, group='router')
    conf.register_opts(zookeeper_opts, group='zookeeper')
    conf.register_opts(tls.router_ssl_opts, group='ssl')
    register_opts(conf)


def register_opts(conf):
    conf.register_opts(backend_opts, group='backend')
    conf.register_opts(engine_opts, group='engine')


def make_backend(conf):
    """The configured backend. An s3 backend is checked first: an endpoint
    that does not honour conditional writes raises
    ``s3.ConditionalWritesUnsupported``."""
    if conf.backend.backend == 's3':
        backend = s3.S3Backend(s3_settings(conf))
        backend.check_conditional_writes()
        return backend
    return local.LocalBackend(conf.backend.local_path)


def s3_settings(conf):
    group = conf.backend
    if not group.s3_bucket:
        raise base.BackendError('[backend] s3_bucket is required with '
                                'backend = s3')
    prefix = group.s3_prefix
    if prefix and not prefix.endswith('/'):
        prefix += '/'
    return s3_calls.Settings(
        bucket=group.s3_bucket, prefix=prefix,
        endpoint_url=group.s3_endpoint_url, region=group.s3_region,
        access_key=group.s3_access_key, secret_key=group.s3_secret_key,
        multipart_threshold=group.s3_multipart_threshold_mib << 20,
        multipart_chunk=group.s3_multipart_chunk_mib << 20,
        max_attempts=group.s3_max_attempts,
        retry_base_delay=group.s3_retry_base_delay,
        retry_max_delay=group.s3_retry_max_delay,
        connect_timeout=group.s3_connect_timeout,
        read_timeout=group.s3_read_timeout)


def make_tuning(conf):
    return volume.Tuning(
        container_bytes=conf.engine.container_size_mib << 20,
        checkpoint_every_records=conf.engine.checkpoint_every_records,
        checkpoint_every_bytes=conf.engine.checkpoint_every_mib << 20)


def make_compaction_policy(conf):
    return compaction.Policy(threshold=conf.engine.compaction_threshold,
                             bytes_per_second=conf.engine.compaction_mib_per_second << 20)


def make_read_cache(conf):
    """The configured read cache, or None."""
    engine = conf.engine
    if not engine.read_cache_path:
        return None
    return read_cache.ReadCache(engine.read_cache_path, engine.read_cache_mib << 20,
                                readahead_bytes=engine.read_cache_readahead_kib << 10,
                                prefetch_requests=engine.read_cache_prefetch_requests)


def list_opts():
    return [('router', router_opts), ('zookeeper', zookeeper_opts),
            ('backend', backend_opts), ('engine', engine_opts),
            ('ssl', tls.router_ssl_opts)]

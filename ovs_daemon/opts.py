"""Options of the volume store: the backend and the engine's tuning.

Published through the ``oslo.config.opts`` entry point, so
``oslo-config-generator --namespace ovs_daemon`` writes the sample.
"""

from oslo_config import cfg

from ovs_daemon.backends import local
from ovs_daemon.engine import volume

backend_opts = [
    cfg.StrOpt('backend', default='local', choices=['local'],
               help='Where volumes are stored. "local": a directory on this '
                    'host, shared by the routers running here.'),
    cfg.StrOpt('local_path', default='/var/lib/ovs-edge/backend',
               help='Directory of the local backend.'),
]

engine_opts = [
    cfg.IntOpt('container_size_mib', default=8, min=1, max=256,
               help='Size of the container objects writes are packed into.'),
    cfg.IntOpt('checkpoint_every_records', default=256, min=1,
               help='Write a checkpoint of the block map after this many '
                    'log records, bounding the log a restart replays.'),
    cfg.IntOpt('checkpoint_every_mib', default=64, min=1,
               help='Write a checkpoint after this many MiB of log records.'),
]


def register_opts(conf):
    conf.register_opts(backend_opts, group='backend')
    conf.register_opts(engine_opts, group='engine')


def make_backend(conf):
    return local.LocalBackend(conf.backend.local_path)


def make_tuning(conf):
    return volume.Tuning(
        container_bytes=conf.engine.container_size_mib << 20,
        checkpoint_every_records=conf.engine.checkpoint_every_records,
        checkpoint_every_bytes=conf.engine.checkpoint_every_mib << 20)


def list_opts():
    return [('backend', backend_opts), ('engine', engine_opts)]

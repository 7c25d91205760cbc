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

"""The data path's modules that run compiled.

Each is plain Python, its ``.py`` the only source. ``tools/build_extensions.py``
(run by ``tools/bootstrap.sh``) compiles them with Cython into an extension
beside the ``.py``, which Python imports ahead of it: the same code, with less
of the interpreter's work per request (docs/performance.md, "The data path
compiled"). Without the build every module runs as Python, slower.
"""

import importlib
import importlib.machinery

DATA_PATH_MODULES = (
    'ovs_daemon.nbd.protocol',
    'ovs_daemon.nbd.connection',
    'ovs_daemon.nbd.admission',
    'ovs_daemon.nbd.session',
    'ovs_daemon.nbd.export',
    'ovs_daemon.nbd.client',
    'ovs_daemon.router.gate',
    'ovs_daemon.router.metrics',
    'ovs_daemon.router.volume_export',
    'ovs_daemon.engine.blockmap',
    'ovs_daemon.engine.volume',
    'ovs_daemon.backends.page_cache',
    'ovs_daemon.backends.local',
    'ovs_cinder.edge.journal',
    'ovs_cinder.edge.volume_proxy',
)


def is_compiled(module):
    """Whether ``module`` was imported from an extension, not its ``.py``."""
    return module.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def running_as_python():
    """The data path's modules this process imported from their ``.py``."""
    return [name for name in DATA_PATH_MODULES
            if not is_compiled(importlib.import_module(name))]


def log_how_the_data_path_runs(log):
    """One line at a daemon's start: a data path left uncompiled (no build,
    or an install without it) still works, at a higher cost per request."""
    as_python = running_as_python()
    if as_python:
        log.warning('Data path modules running as Python, not compiled '
                    '(run tools/build_extensions.py): %s', ', '.join(as_python))
    else:
        log.info('Data path compiled: %d modules', len(DATA_PATH_MODULES))

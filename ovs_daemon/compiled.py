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

Each is plain Python, its ``.py`` the only source. An install (``pip
install``, ``setup.py``) compiles them with Cython into extensions, which
Python imports ahead of the ``.py``: the same code, with less of the
interpreter's work per request (docs/performance.md, "The data path
compiled"). In a source tree, ``tools/build_extensions.py`` compiles those
whose source changed, beside their ``.py``. Without Cython every module runs
as Python, slower.

Type annotations are not taken as C types (``annotation_typing``): the
compiled module behaves as the Python one, which the same tests check.
"""

import importlib
import importlib.machinery
import os

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


DIRECTIVES = {'language_level': 3, 'annotation_typing': False}


def extensions(modules=DATA_PATH_MODULES):
    """The setuptools extensions of ``modules``, their C made by Cython
    under build/cython; paths are relative to the top of the source tree,
    the current directory of ``setup.py``."""
    from Cython.Build import cythonize
    import setuptools

    return cythonize(
        [setuptools.Extension(name, [name.replace('.', os.sep) + '.py']) for name in modules],
        compiler_directives=DIRECTIVES, build_dir=os.path.join('build', 'cython'),
        nthreads=os.cpu_count(), quiet=True)


def is_compiled(module):
    """Whether ``module`` was imported from an extension, not its ``.py``."""
    return module.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def running_as_python():
    """The data path's modules this process imported from their ``.py``."""
    return [name for name in DATA_PATH_MODULES
            if not is_compiled(importlib.import_module(name))]


def summary():
    """How this process runs the data path, in a few words (benchmarks
    print it beside their figures)."""
    as_python = running_as_python()
    if not as_python:
        return 'data path compiled'
    return 'data path as Python in %d of %d modules' % (len(as_python), len(DATA_PATH_MODULES))


def log_how_the_data_path_runs(log):
    """One line at a daemon's start: a data path left uncompiled (no build,
    or an install without it) still works, at a higher cost per request."""
    as_python = running_as_python()
    if as_python:
        log.warning('Data path modules running as Python, not compiled '
                    '(run tools/build_extensions.py): %s', ', '.join(as_python))
    else:
        log.info('Data path compiled: %d modules', len(DATA_PATH_MODULES))

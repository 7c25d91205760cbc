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

"""Compiles the data path's modules (``ovs_daemon.compiled``) with Cython, in
place: each extension beside its ``.py``, where Python imports it first. An
editable install (``pip install -e``) compiles them all once; this keeps
them current as the sources change.

    .venv/bin/python tools/build_extensions.py [--check]

Only a module whose ``.py`` (or a ``.pxd`` it is built with) is newer than
its extension is compiled again, so a run with nothing changed takes about
a second; ``tools/bootstrap.sh`` and the tests' start run it, so that no extension
older than its source is ever imported. Extensions of modules no longer in
the list are removed, since they would shadow their ``.py``. ``--check``
compiles nothing and exits 1 when an extension is missing or stale.
"""

import argparse
import glob
import importlib.machinery
import os
import re
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from ovs_daemon import compiled  # noqa: E402

PACKAGES = ('ovs_daemon', 'ovs_cinder')
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
CIMPORT = re.compile(r'^from ([\w.]+) cimport (\w+)$', re.MULTILINE)


def module_path(module, suffix):
    return os.path.join(TOP, *module.split('.')) + suffix


def source_path(module):
    return module_path(module, '.py')


def extension_path(module):
    return module_path(module, SUFFIX)


def declarations_path(module):
    return module_path(module, '.pxd')


def sources(module):
    """What ``module``'s extension is built from: its ``.py``, its ``.pxd``
    if any, and the ``.pxd`` files that one cimports (a C type declared in
    one is laid out in the extensions of the modules that cimport it)."""
    found = [source_path(module)]
    pending = [module]
    while pending:
        pxd = declarations_path(pending.pop())
        if not os.path.exists(pxd) or pxd in found:
            continue
        found.append(pxd)
        with open(pxd) as declarations:
            for package, name in CIMPORT.findall(declarations.read()):
                # from a.module cimport Type, or from a.package cimport module
                pending += [package, package + '.' + name]
    return found


def record_path(module):
    return os.path.join(TOP, 'build', 'extension-sources', module)


def recorded_sources(module):
    """The sources ``module``'s extension was last built from, as
    ``record_sources`` wrote them (None before the first build)."""
    try:
        with open(record_path(module)) as record:
            return record.read().splitlines()
    except FileNotFoundError:
        return None


def record_sources(module):
    os.makedirs(os.path.dirname(record_path(module)), exist_ok=True)
    with open(record_path(module), 'w') as record:
        record.write(''.join(path + '\n' for path in sources(module)))


def stale_modules():
    """The listed modules whose extension is missing, older than the
    sources it is built from, or built from other sources (a ``.pxd`` added
    or removed since)."""
    stale = []
    for module in compiled.DATA_PATH_MODULES:
        try:
            built = os.stat(extension_path(module)).st_mtime
        except FileNotFoundError:
            stale.append(module)
            continue
        current = sources(module)
        if (recorded_sources(module) != current
                or any(os.stat(path).st_mtime > built for path in current)):
            stale.append(module)
    return stale


def remove_unlisted_extensions():
    listed = {extension_path(module) for module in compiled.DATA_PATH_MODULES}
    for package in PACKAGES:
        pattern = os.path.join(TOP, package, '**', '*' + SUFFIX)
        for path in glob.glob(pattern, recursive=True):
            if path not in listed:
                print('build_extensions: removing %s (not in the list)'
                      % os.path.relpath(path, TOP))
                os.unlink(path)


def build(modules):
    # Imported here: --check and an up-to-date tree need neither.
    import setuptools

    print('build_extensions: compiling %s' % ', '.join(modules), flush=True)
    setuptools.setup(
        name='ovs-edge-data-path',
        ext_modules=compiled.extensions(modules),
        script_args=['-q', 'build_ext', '--inplace', '--build-temp', os.path.join('build', 'temp'),
                     '--parallel', str(os.cpu_count())])
    for module in modules:
        record_sources(module)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--check', action='store_true',
                        help='compile nothing; exit 1 when an extension is missing or stale')
    args = parser.parse_args(argv)
    os.chdir(TOP)
    stale = stale_modules()
    if args.check:
        for module in stale:
            print('build_extensions: %s is not compiled from its current source' % module)
        return 1 if stale else 0
    remove_unlisted_extensions()
    if stale:
        build(stale)
    return 0


if __name__ == '__main__':
    sys.exit(main())

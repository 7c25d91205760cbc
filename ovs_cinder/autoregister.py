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

"""Registers the ``ovs_edge`` volume type in nova-compute and in cinder's
volume and backup services, which have no plugin hook for it.

A ``.pth`` file in those services' Python environment calls :func:`install`
when the interpreter starts; ``python -m ovs_cinder.autoregister enable``
writes it into that interpreter's site-packages (``disable`` removes it).

In the programs named in :data:`PROGRAMS` it adds an import hook that calls
the registration functions right after the modules they patch are imported:
os-brick's connector factory (:func:`ovs_cinder.brick.connector.register`)
and nova's libvirt driver (:func:`ovs_cinder.nova.volume.register`). It does
not import them itself: nova and cinder monkey-patch with eventlet before
they import anything else, and an import from a ``.pth`` file would come
first. Any other Python process only pays for the check of its name.
"""

import argparse
import importlib
import importlib.abc
import os
import sys
import sysconfig

PROGRAMS = frozenset({'nova-compute', 'cinder-volume', 'cinder-backup'})

# Module whose import triggers a registration -> (module, function) to call.
AFTER_IMPORT = {
    'os_brick.initiator.connector': ('ovs_cinder.brick.connector', 'register'),
    'nova.virt.libvirt.driver': ('ovs_cinder.nova.volume', 'register'),
}

# site processes .pth files in name order: this one must come after the
# editable install's (``__editable__.*.pth``, ``easy-install.pth``) that
# makes ovs_cinder importable, and it says nothing when ovs_cinder is gone.
PTH_NAME = 'ovs_edge_autoregister.pth'
PTH_LINE = ("import importlib.util; importlib.util.find_spec('ovs_cinder') and "
            "__import__('ovs_cinder.autoregister').autoregister.install()\n")


def install(argv=None):
    """Add the import hook if this process is one of :data:`PROGRAMS`."""
    argv = sys.argv if argv is None else argv
    if not argv or os.path.basename(argv[0]) not in PROGRAMS:
        return False
    if not any(isinstance(f, RegisteringFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, RegisteringFinder())
    return True


class RegisteringFinder(importlib.abc.MetaPathFinder):
    """Finds the modules of :data:`AFTER_IMPORT` through the other finders
    and wraps their loaders so the registration runs once they are loaded."""

    def find_spec(self, name, path, target=None):
        if name not in AFTER_IMPORT:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, 'exec_module'):
            return spec
        spec.loader = RegisteringLoader(spec.loader, *AFTER_IMPORT[name])
        return spec


class RegisteringLoader(importlib.abc.Loader):

    def __init__(self, loader, module, function):
        self._loader = loader
        self._register = (module, function)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        name, function = self._register
        getattr(importlib.import_module(name), function)()

    def __getattr__(self, attribute):
        # get_source, get_filename, is_package...: tracebacks and pkgutil
        # ask the module's loader for them.
        return getattr(self._loader, attribute)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m ovs_cinder.autoregister',
        description='Write (enable) or remove (disable) the .pth file that registers '
                    'the ovs_edge volume type in nova-compute, cinder-volume and '
                    'cinder-backup started by this Python.')
    parser.add_argument('action', choices=['enable', 'disable'])
    parser.add_argument('--site-dir', default=sysconfig.get_paths()['purelib'],
                        help='site-packages directory (default: %(default)s)')
    args = parser.parse_args(argv)
    path = os.path.join(args.site_dir, PTH_NAME)
    if args.action == 'enable':
        with open(path, 'w') as f:
            f.write(PTH_LINE)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    print(path)
    return 0


if __name__ == '__main__':
    sys.exit(main())

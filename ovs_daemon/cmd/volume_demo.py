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

"""ovs-volume-demo: a volume store on the local backend, end to end.

Creates a volume, writes to it, snapshots, clones, then drops everything in
memory and restarts the volumes from the backend, and shows what it
measured. Everything lives under --workdir and is removed afterwards unless
--keep is given.
"""

import argparse
import hashlib
import os
import shutil
import tempfile
import time

from ovs_daemon.backends import base
from ovs_daemon.backends import local
from ovs_daemon.engine import store as store_mod

MiB = 1 << 20
GiB = 1 << 30


class Step:
    """Prints a step as it starts and how long it took when it ends."""

    rows = []

    def __init__(self, text):
        self.text = text

    def __enter__(self):
        print('... %s' % self.text, flush=True)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        elapsed = time.perf_counter() - self.start
        self.rows.append((self.text, elapsed))
        return False


def digest(volume, size):
    h = hashlib.sha256()
    for offset in range(0, size, 8 * MiB):
        h.update(volume.read(offset, min(8 * MiB, size - offset)))
    return h.hexdigest()[:16]


def run(workdir, data_mib):
    store = store_mod.VolumeStore(local.LocalBackend(
        os.path.join(workdir, 'backend')))
    size = max(GiB, 2 * data_mib * MiB)
    with Step('create a %d GiB volume "demo"' % (size // GiB)):
        vol = store.create('demo', size, base.OwnerKey.generate(1))
    with Step('write %d MiB in 1 MiB pieces, flushing every 16 MiB'
              % data_mib):
        for i in range(data_mib):
            vol.write(i * MiB, os.urandom(MiB))
            if i % 16 == 15:
                vol.flush()
        vol.flush()
    before = digest(vol, data_mib * MiB)
    head_at_snapshot = vol.read(0, 4 * MiB)
    with Step('snapshot "s1"'):
        vol.create_snapshot('s1')
    with Step('clone "demo-clone" from s1'):
        clone = store.clone('demo-clone', 'demo', 's1',
                            base.OwnerKey.generate(1))
    with Step('overwrite the first 4 MiB of the volume (clone unchanged)'):
        vol.write(0, os.urandom(4 * MiB))
        vol.flush()
    clone_block = data_mib * MiB
    clone.write(clone_block, b'c' * 4096)
    clone.flush()
    with Step('restart both volumes from the backend (new epochs)'):
        vol = store.open('demo', base.OwnerKey.generate(2))
        clone = store.open('demo-clone', base.OwnerKey.generate(2))
    with Step('verify the clone: snapshot data and its own write'):
        clone_ok = clone.read(0, 4 * MiB) == head_at_snapshot and \
            clone.read(clone_block, 4096) == b'c' * 4096
    with Step('revert the volume to s1 and verify'):
        vol.revert('s1')
        after = digest(vol, data_mib * MiB)
    stats = vol.stats()
    print()
    print('%-62s %10s' % ('step', 'seconds'))
    for text, elapsed in Step.rows:
        print('%-62s %10.3f' % (text, elapsed))
    print()
    print('volume after revert matches the data before the snapshot: %s'
          % ('yes' if after == before else 'NO'))
    print('clone reads the snapshot and its own write after restart: %s'
          % ('yes' if clone_ok else 'NO'))
    print('block map: %d bytes for %d MiB written (%.1f bytes per 4 KiB '
          'block)' % (stats['map_bytes'], data_mib,
                      stats['map_bytes'] / (data_mib * 256)))
    return after == before and clone_ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--workdir', help='where the backend lives '
                        '(default: a new temporary directory)')
    parser.add_argument('--data-mib', type=int, default=256,
                        help='MiB written to the volume (default 256)')
    parser.add_argument('--keep', action='store_true',
                        help='keep the workdir afterwards')
    args = parser.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix='ovs-demo-')
    os.makedirs(workdir, exist_ok=True)
    try:
        ok = run(workdir, args.data_mib)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == '__main__':
    raise SystemExit(main())

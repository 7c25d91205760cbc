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

"""The local backend's durability point for puts with ``durable=False``:
they are synced before a commit (``append_log``) of their namespace is
written, seen in the system calls of a real owner process."""

import os
import re
import subprocess
import sys

import pytest

from ovs_daemon.backends import base
from ovs_daemon.backends import local

NS = 'vol1'
MiB = 1 << 20


def claimed(backend):
    backend.create_namespace(NS)
    key = base.OwnerKey.generate(1)
    return key, backend.claim(NS, key)


# Puts three containers without ``durable``, then commits a record.
_OWNER = """
import sys
from ovs_daemon.backends import base, local
backend = local.LocalBackend(sys.argv[1])
backend.create_namespace('vol1')
key = base.OwnerKey.generate(1)
slot = backend.claim('vol1', key)
for n in range(1, 4):
    backend.put('vol1', 'data/%012d-1' % n, b'x' * (1 << 20), key, durable=False)
backend.append_log('vol1', slot + 1, b'names the containers', key)
"""
# A volume writing four containers, three of them sealed and written
# behind by the engine's own thread, then flushing.
_VOLUME_OWNER = """
import sys
from ovs_daemon.backends import base, local
from ovs_daemon.engine import volume
backend = local.LocalBackend(sys.argv[1])
tuning = volume.Tuning(container_bytes=1 << 20)
vol = volume.Volume.create(backend, 'vol1', 8 << 20, base.OwnerKey.generate(1), tuning=tuning)
for n in range(7):
    vol.write(n << 19, bytes([n + 1]) * (1 << 19))
vol.flush()
"""
_SYSCALL = re.compile(r'^\d+ +(\w+)\((.*)\) += 0$')
# A call another thread's interrupted is split over two lines.
_UNFINISHED = re.compile(r'^(\d+) +(.*) <unfinished \.\.\.>$')
_RESUMED = re.compile(r'^(\d+) +<\.\.\. \w+ resumed>(.*)$')
_PATH = re.compile(r'[<"]([^<>"]+)[>"]')


def traced_owner(root, owner=_OWNER):
    """The file system calls of a real owner process (its threads too) that
    succeeded, as ``(call, [paths], started, ended)``, in the order they
    ended; ``started`` and ``ended`` order them (two lines of the trace
    where another thread's call interrupted one). ``strace -y`` names the
    file behind every fd."""
    trace = root / 'trace'
    subprocess.run(['strace', '-f', '-qq', '-y', '-o', str(trace), '-e',
                    'trace=fsync,fdatasync,syncfs,rename,renameat,renameat2,link,linkat',
                    sys.executable, '-c', owner, str(root / 'store')], check=True)
    calls = []
    unfinished = {}
    for number, line in enumerate(trace.read_text().splitlines()):
        started = number
        split = _UNFINISHED.match(line)
        if split:
            unfinished[split.group(1)] = number, '%s %s' % split.groups()
            continue
        split = _RESUMED.match(line)
        if split:
            started, head = unfinished.pop(split.group(1))
            line = head + split.group(2)
        match = _SYSCALL.match(line)
        if match:
            calls.append((match.group(1), _PATH.findall(match.group(2)), started, number))
    return calls


@pytest.mark.parametrize('owner,containers', [(_OWNER, 3), (_VOLUME_OWNER, 4)],
                         ids=['backend', 'volume'])
def test_a_commit_is_written_only_once_the_objects_put_before_it_are_synced(
        tmp_path, owner, containers):
    """Each container, and the directory naming it, is fsynced (or its
    whole file system synced) after it is renamed into place and before
    the log slot is linked: a crash can lose no object a record names."""
    calls = traced_owner(tmp_path, owner)
    [commit] = [started for call, paths, started, _ in calls
                if call.startswith('link') and paths[-1].endswith('/log/0000000000000002')]
    placed = {paths[-1]: ended for call, paths, _, ended in calls
              if call.startswith('rename') and '/data/' in paths[-1]}
    assert len(placed) == containers

    def synced_between(path, after, before):
        return any((call == 'syncfs' or call in ('fsync', 'fdatasync') and paths == [path])
                   and after < started and ended < before
                   for call, paths, started, ended in calls)

    for path, renamed in placed.items():
        assert renamed < commit, path
        assert synced_between(path, renamed, commit), path
        assert synced_between(os.path.dirname(path), renamed, commit), path


def test_objects_deleted_before_the_commit_do_not_fail_it(tmp_path):
    backend = local.LocalBackend(tmp_path)
    key, claim_slot = claimed(backend)
    backend.put(NS, 'data/000000000001-1', b'x' * 4096, key, durable=False)
    backend.delete(NS, 'data/000000000001-1', key)
    backend.append_log(NS, claim_slot + 1, b'record', key)
    assert [record for _, record in backend.read_log(NS, after=claim_slot)] == [b'record']

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

"""Real NBD clients as the tests run them: qemu-io, qemu-img, nbdinfo, fio."""

import subprocess


def run(*args, expect_ok=True, timeout=120, cwd=None):
    """Run a client; return its output (stdout and stderr)."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    assert (result.returncode == 0) == expect_ok, '%s %s:\n%s\n%s' % (
        args[0], 'failed' if expect_ok else 'unexpectedly succeeded',
        result.stdout, result.stderr)
    return result.stdout + result.stderr


def qemu_io(uri, *commands, expect_ok=True):
    args = ['qemu-io', '-f', 'raw']
    for command in commands:
        args += ['-c', command]
    return run(*args, uri, expect_ok=expect_ok)


def tcp_uri(address, volume):
    """``nbd://host:port/volume`` for an address "host:port"."""
    return 'nbd://%s/%s' % (address, volume)

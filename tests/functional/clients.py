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

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

"""Real NBD clients (qemu, libnbd, fio) against the server, over unix and TCP."""

import json
import os
import subprocess

import pytest

from tests.functional.nbd.conftest import EXPORT_SIZE

pytestmark = pytest.mark.slow

TRANSPORTS = ["unix", "tcp"]


def uri(server, transport, name="vol1"):
    return (server.unix_uri if transport == "unix" else server.tcp_uri)(name)


def run(*args, cwd=None):
    result = subprocess.run(args, capture_output=True, text=True, timeout=120,
                            cwd=cwd)
    assert result.returncode == 0, "%s failed:\n%s\n%s" % (
        args[0], result.stdout, result.stderr)
    return result.stdout


def run_expecting_failure(*args):
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0, "%s unexpectedly succeeded" % args[0]
    return result.stdout + result.stderr


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_qemu_io_pattern_written_is_read_back(nbd_process, transport):
    target = uri(nbd_process, transport)
    run("qemu-io", "-f", "raw", "-c", "write -P 0xa5 4096 1M",
        "-c", "write -P 0x3c 3M 64k", target)
    # A separate process: the data comes from the server, not a cache.
    run("qemu-io", "-f", "raw", "-c", "read -P 0xa5 4096 1M",
        "-c", "read -P 0x3c 3M 64k", "-c", "read -P 0 0 4096", target)
    out = run_expecting_failure("qemu-io", "-f", "raw",
                                "-c", "read -P 0xa5 3M 64k", target)
    assert "Pattern verification failed" in out


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_qemu_img_convert_then_compare(nbd_process, transport, tmp_path):
    source = tmp_path / "source.raw"
    with open(source, "wb") as f:
        for i in range(EXPORT_SIZE // (1024 * 1024)):
            # Zero regions too, so qemu-img uses WRITE_ZEROES.
            f.write(os.urandom(1024 * 1024) if i % 3 else bytes(1024 * 1024))
    target = uri(nbd_process, transport)
    run("qemu-io", "-f", "raw", "-c", "write -P 0xff 0 16M", target)
    run("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(source),
        target)
    run("qemu-img", "compare", "-f", "raw", "-F", "raw", str(source), target)
    run("qemu-io", "-f", "raw", "-c", "write -P 0x01 5M 4k", target)
    out = run_expecting_failure("qemu-img", "compare", "-f", "raw",
                                "-F", "raw", str(source), target)
    assert "mismatch at offset 5242880" in out


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_nbdinfo_shows_size_and_block_sizes(nbd_process, transport):
    info = json.loads(run("nbdinfo", "--json", uri(nbd_process, transport)))
    export = info["exports"][0]
    assert export["export-name"] == "vol1"
    assert export["export-size"] == EXPORT_SIZE
    assert export["block_size_minimum"] == 1
    assert export["block_size_preferred"] == 4096
    assert export["block_size_maximum"] == 32 * 1024 * 1024
    for capability in ("can_flush", "can_fua", "can_trim", "can_zero",
                       "can_multi_conn"):
        assert export[capability] is True
    assert export["is_read_only"] is False


def test_nbdinfo_lists_exports(nbd_process):
    info = json.loads(run("nbdinfo", "--json", "--list",
                          uri(nbd_process, "unix", "")))
    assert sorted(e["export-name"] for e in info["exports"]) == [
        "vol1", "vol2"]


def test_refused_export_reaches_qemu_with_the_servers_reason(nbd_process):
    out = run_expecting_failure("qemu-io", "-f", "raw", "-c", "read 0 1",
                                uri(nbd_process, "unix", "nope"))
    assert "server reported: no export named 'nope'" in out


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_fio_random_writes_verify(nbd_process, transport, tmp_path):
    # cwd: fio leaves a verify state file there.
    run("fio", "--name=verify", "--ioengine=nbd",
        "--uri=%s" % uri(nbd_process, transport), "--rw=randwrite",
        "--bs=4k", "--iodepth=16", "--size=8M", "--verify=crc32c",
        "--do_verify=1", "--verify_fatal=1", cwd=tmp_path)


def test_fio_mixed_sizes_verify(nbd_process, tmp_path):
    run("fio", "--name=verify", "--ioengine=nbd",
        "--uri=%s" % uri(nbd_process, "unix", "vol2"), "--rw=randwrite",
        "--bsrange=512-256k", "--iodepth=8", "--size=8M",
        "--verify=crc32c", "--verify_fatal=1", cwd=tmp_path)

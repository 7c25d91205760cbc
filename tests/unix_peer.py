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

"""Talking to a unix socket as another user: a forked child drops to
``user``:``group`` (and no other groups) before it connects."""

import grp
import os
import pwd
import socket


def exchange_as(path, user, group, request=b'', answer_bytes=8):
    """Connect to ``path`` as ``user``:``group``, send ``request``, return
    the first ``answer_bytes`` bytes of the answer; None when the socket
    refuses that user (EACCES)."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 4
        os.close(reader)
        try:
            os.setgroups([])
            os.setgid(grp.getgrnam(group).gr_gid)
            os.setuid(pwd.getpwnam(user).pw_uid)
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(10)
                sock.connect(path)
                sock.sendall(request)
                os.write(writer, sock.recv(answer_bytes))
            code = 0
        except PermissionError:
            code = 3
        finally:
            os._exit(code)
    os.close(writer)
    with os.fdopen(reader, 'rb') as pipe:
        answer = pipe.read()
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    assert code in (0, 3), 'the probe failed (exit %d)' % code
    return answer if code == 0 else None

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

"""Run Python code inside a named network namespace.

Python 3.11 has no ``os.setns``; libc's ``setns`` is called through ctypes.
Only the calling thread changes namespace, so the work runs in a throwaway
OS thread and the rest of the interpreter stays where it was.  Sockets keep
the namespace they were created in, which is all a probe or a port pick needs.
"""

import ctypes
import os
import sys
import threading

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = '/run/netns'

_libc = ctypes.CDLL(None, use_errno=True)


def netns_path(name):
    return os.path.join(NETNS_RUN_DIR, name)


def _enter_netns(name):
    fd = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, 'setns(%s): %s' % (name, os.strerror(err)))
    finally:
        os.close(fd)


def _os_thread_class():
    """A thread class that really starts an OS thread.

    In a process eventlet has monkey-patched (cinder's services, in the
    tests that run them), ``threading.Thread`` is a green thread on the
    calling OS thread: ``setns`` there would move the whole process.
    """
    patcher = sys.modules.get('eventlet.patcher')
    if patcher is not None and patcher.is_monkey_patched('thread'):
        return patcher.original('threading').Thread
    return threading.Thread


def run_in_netns(name, func, *args):
    """Return ``func(*args)`` evaluated inside network namespace ``name``.

    With ``name=None`` it simply calls ``func`` here.
    """
    if name is None:
        return func(*args)
    outcome = {}

    def target():
        try:
            _enter_netns(name)
            outcome['value'] = func(*args)
        except BaseException as exc:  # handed to the caller's thread
            outcome['error'] = exc

    thread = _os_thread_class()(target=target, name='netns-%s' % name)
    thread.start()
    thread.join()
    if 'error' in outcome:
        raise outcome['error']
    return outcome['value']

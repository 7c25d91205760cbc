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

"""A thread for background work (the collector and its compaction) that
yields to guests' IO: the lowest CPU priority (nice 19) and the idle IO
class, set for that thread alone (Linux schedules threads as tasks)."""

import concurrent.futures
import ctypes
import os
import platform
import threading

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

_IOPRIO_SET = {'x86_64': 251, 'aarch64': 30, 'ppc64le': 273, 's390x': 282}
_IOPRIO_WHO_PROCESS = 1
_IOPRIO_CLASS_IDLE = 3
_IOPRIO_CLASS_SHIFT = 13


def low_priority_executor(name):
    """One worker thread at the lowest CPU and IO priority."""
    return concurrent.futures.ThreadPoolExecutor(
        1, thread_name_prefix=name, initializer=lower_this_thread)


def lower_this_thread():
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, 19)
    except OSError as exc:
        LOG.warning('Cannot lower the CPU priority of thread %d: %s', tid, exc)
    number = _IOPRIO_SET.get(platform.machine())
    if number is None:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(number, _IOPRIO_WHO_PROCESS, tid,
                    _IOPRIO_CLASS_IDLE << _IOPRIO_CLASS_SHIFT) != 0:
        LOG.warning('Cannot set the idle IO class of thread %d: %s', tid,
                    os.strerror(ctypes.get_errno()))


def io_priority_class(tid):
    """The IO class of a thread (for tests): 0 none, 1 realtime, 2 best
    effort, 3 idle; None where unknown."""
    number = _IOPRIO_SET.get(platform.machine())
    if number is None:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    value = libc.syscall(number + 1, _IOPRIO_WHO_PROCESS, tid)  # ioprio_get
    return None if value < 0 else value >> _IOPRIO_CLASS_SHIFT

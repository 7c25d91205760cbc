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
import threading

from oslo_log import log as logging
import psutil

LOG = logging.getLogger(__name__)


def low_priority_executor(name):
    """One worker thread at the lowest CPU and IO priority."""
    return concurrent.futures.ThreadPoolExecutor(
        1, thread_name_prefix=name, initializer=lower_this_thread)


def lower_this_thread():
    tid = threading.get_native_id()
    # A thread id names the task alone: the rest of the process keeps its
    # priorities.
    try:
        thread = psutil.Process(tid)
    except psutil.Error as exc:
        # The worker must start anyway: an initializer that raises breaks
        # the executor, and the collector would never run.
        LOG.warning('Cannot lower the priorities of thread %d: %s', tid, exc)
        return
    try:
        thread.nice(19)
    except (OSError, psutil.Error) as exc:
        LOG.warning('Cannot lower the CPU priority of thread %d: %s', tid, exc)
    try:
        thread.ionice(psutil.IOPRIO_CLASS_IDLE)
    except (OSError, psutil.Error) as exc:
        LOG.warning('Cannot set the idle IO class of thread %d: %s', tid, exc)

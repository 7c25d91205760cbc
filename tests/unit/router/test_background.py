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

"""The collector's thread runs below the guests' IO: nice 19, idle IO class,
and the rest of the process keeps its priority."""

import os
import threading

import psutil

from ovs_daemon.router import background


def priorities():
    thread = psutil.Process(threading.get_native_id())
    return thread.nice(), thread.ionice().ioclass


def test_the_collector_thread_has_the_lowest_cpu_and_io_priority():
    executor = background.low_priority_executor('test-collect')
    try:
        nice, io_class = executor.submit(priorities).result(10)
    finally:
        executor.shutdown()
    assert nice == 19
    assert io_class == 3
    assert priorities()[0] == os.getpriority(os.PRIO_PROCESS, 0) < 19


def test_the_collector_thread_runs_where_its_priority_cannot_be_read(monkeypatch):
    # No real way to make a thread's own /proc entry unreadable here.
    def refused(pid):
        raise psutil.AccessDenied(pid)
    monkeypatch.setattr(background.psutil, 'Process', refused)
    executor = background.low_priority_executor('test-collect')
    try:
        assert executor.submit(lambda: 'collected').result(10) == 'collected'
    finally:
        executor.shutdown()

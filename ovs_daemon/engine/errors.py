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

"""Errors of the volume engine, one type for each thing a caller acts on.

A backend's ``Fenced`` passes through unchanged: the caller halts on it.
"""


class VolumeError(Exception):
    """Base of the engine's errors."""


class OutOfRange(VolumeError, ValueError):
    """A request reaches outside the volume; nothing was changed."""


class InvalidRequest(VolumeError, ValueError):
    """A request's arguments are malformed; nothing was changed."""


class Halted(VolumeError):
    """This copy of the volume stopped serving: it was fenced, handed over or
    closed. It never serves again; the volume must be opened anew."""


class VolumeNotFound(VolumeError, LookupError):
    pass


class VolumeExists(VolumeError):
    pass


class SnapshotNotFound(VolumeError, LookupError):
    pass


class SnapshotExists(VolumeError):
    pass


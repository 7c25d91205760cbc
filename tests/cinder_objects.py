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

"""cinder's own volume and snapshot objects, as the driver's tests hand
them to it (each with an id of its own)."""

import uuid

from cinder.tests.unit import fake_snapshot
from cinder.tests.unit import fake_volume


def volume(context, size=1, **updates):
    """A volume of ``size`` GiB."""
    return fake_volume.fake_volume_obj(context, size=size, id=str(uuid.uuid4()), **updates)


def snapshot(context, source, size=None):
    """A snapshot of the volume ``source``, of ``size`` GiB (by default the
    volume's size)."""
    return fake_snapshot.fake_snapshot_obj(context, id=str(uuid.uuid4()), volume=source,
                                           volume_size=source.size if size is None else size)

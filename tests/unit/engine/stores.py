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

"""The volume store the engine's tests run on."""

import pytest

from ovs_daemon.backends import local
from ovs_daemon.engine import store as store_mod

ON_EACH_BACKEND = pytest.mark.parametrize('store', ['local', 's3'], indirect=True)


def on_backend(request, tmp_path, tuning=None):
    """A store on the local backend, or on s3 for tests marked
    ON_EACH_BACKEND."""
    if getattr(request, 'param', 'local') == 's3':
        return store_mod.VolumeStore(request.getfixturevalue('s3_test_place').backend(),
                                     tuning)
    return store_mod.VolumeStore(local.LocalBackend(tmp_path / 'backend'), tuning)

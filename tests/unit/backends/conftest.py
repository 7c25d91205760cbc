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

import pytest

from ovs_daemon.backends import local

# Every backend in this list runs the whole conformance suite.
BACKENDS = ['local', 's3']


def make_backend(kind, root):
    """``root``: a directory for local, an ``s3_store.Place`` for s3."""
    if kind == 'local':
        return local.LocalBackend(root / 'store')
    if kind == 's3':
        return root.backend()
    raise ValueError(kind)


@pytest.fixture(params=BACKENDS)
def backend_spec(request, tmp_path):
    """(kind, root): enough for another process to open the same store."""
    if request.param == 's3':
        return 's3', request.getfixturevalue('s3_test_place')
    return request.param, tmp_path


@pytest.fixture
def backend(backend_spec):
    return make_backend(*backend_spec)

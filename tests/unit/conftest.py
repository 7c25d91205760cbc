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

from tests.unit import s3_store


@pytest.fixture(scope='session')
def s3_place(tmp_path_factory):
    """The S3 store of this test session: the one the environment names
    (see tests/unit/s3_store.py), else moto's server, started here and
    stopped by its PID at the end, whatever happened."""
    place = s3_store.configured_place()
    if place is not None:
        yield place
        return
    server = s3_store.MotoServer(tmp_path_factory.mktemp('moto') / 'moto.log')
    try:
        server.wait_ready()
        yield server.place()
    finally:
        server.stop()


@pytest.fixture
def s3_test_place(s3_place):
    """A prefix of its own for one test, removed afterwards."""
    place = s3_place.under(s3_store.fresh_prefix())
    yield place
    s3_store.remove_prefix(place)

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

from ovs_daemon.cmd import admin


@pytest.mark.parametrize('text, size', [
    ('4096', 4096), ('1G', 1 << 30), ('512M', 512 << 20), ('10GiB', 10 << 30),
    ('1.5g', 3 << 29), ('2 TB', 2 << 40), ('64k', 64 << 10),
])
def test_sizes_with_units(text, size):
    assert admin.parse_size(text) == size


@pytest.mark.parametrize('text', ['', 'G', '12Q', '-1G', '1GG', 'ten'])
def test_bad_sizes_are_refused(text):
    with pytest.raises(admin.AdminError, match='bad size'):
        admin.parse_size(text)


def test_sizes_are_shown_in_the_largest_unit():
    assert admin.format_size(1 << 40) == '1.0 TiB'
    assert admin.format_size(1536 << 20) == '1.5 GiB'
    assert admin.format_size(4096) == '4.0 KiB'
    assert admin.format_size(512) == '512 B'


def test_table_columns_line_up():
    lines = admin.table(('name', 'owner'), [('v1', 'r1'), ('volume-2', '-')]).splitlines()
    assert lines == ['name      owner', 'v1        r1', 'volume-2  -']


def test_no_router_given_is_a_clear_error(monkeypatch, capsys):
    for name in ('OVS_CLUSTER', 'OVS_ENDPOINTS', 'OVS_TOKEN_FILE'):
        monkeypatch.delenv(name, raising=False)
    assert admin.main(['list']) == 1
    assert 'say where the routers are' in capsys.readouterr().err

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

"""Credential files: checked when read, several tokens valid at once for a
rotation, and a changed file read again without a restart."""

import os

import pytest

from ovs_daemon.api import token as token_mod


def write(path, text, mode=0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


@pytest.mark.parametrize('mode', [0o644, 0o604, 0o660, 0o666])
def test_a_file_open_to_others_or_writable_by_its_group_is_refused(tmp_path, mode):
    path = write(tmp_path / 'token', 'secret\n', mode)
    with pytest.raises(token_mod.TokenError, match='chmod 600 or 640'):
        token_mod.read_tokens(path)


@pytest.mark.parametrize('mode', [0o600, 0o640, 0o400, 0o440])
def test_owner_only_or_group_readable_files_are_read(tmp_path, mode):
    assert token_mod.read_token(write(tmp_path / 'token', 'secret\n', mode)) == 'secret'


def test_missing_and_empty_files_get_a_clear_error(tmp_path):
    with pytest.raises(token_mod.TokenError, match='cannot read'):
        token_mod.read_tokens(str(tmp_path / 'nothing'))
    with pytest.raises(token_mod.TokenError, match='empty'):
        token_mod.read_tokens(write(tmp_path / 'token', '\n  \n'))


def test_every_line_is_accepted_and_clients_send_the_first(tmp_path):
    tokens = token_mod.TokenFile(write(tmp_path / 'token', 'new\nold\n'))
    assert tokens.current == 'new'
    assert tokens.matches('new') and tokens.matches('old')
    assert not tokens.matches('ne') and not tokens.matches('') and not tokens.matches('newold')


def test_a_rotation_is_read_from_the_changed_file_without_a_restart(tmp_path, monkeypatch):
    path = write(tmp_path / 'token', 'old\n')
    tokens = token_mod.TokenFile(path)
    monkeypatch.setattr(token_mod, 'RELOAD_INTERVAL', 0.0)

    write(tmp_path / 'token', 'new\nold\n')
    assert tokens.matches('new') and tokens.matches('old')
    write(tmp_path / 'token', 'new\n')
    assert tokens.matches('new') and not tokens.matches('old')


def test_a_bad_change_keeps_the_tokens_in_use(tmp_path, monkeypatch):
    path = write(tmp_path / 'token', 'old\n')
    tokens = token_mod.TokenFile(path)
    monkeypatch.setattr(token_mod, 'RELOAD_INTERVAL', 0.0)

    write(tmp_path / 'token', 'leaked\n', 0o644)

    assert tokens.matches('old') and not tokens.matches('leaked')

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


"""The edge's attachments on disk, so that a restarted edge (clean or
after a crash) serves them again at the same socket paths.

One JSON file in ``[edge] state_dir``, replaced atomically at every attach
and detach: written to a temporary file of mode 0600 (it holds attachment
tokens), fsync'd, renamed over the old one, and the directory fsync'd, so
after a crash the file is the old one or the new one, never a mix.
"""

import json
import os

FILE_NAME = 'attachments.json'
VERSION = 1


class StateFileError(Exception):
    """The state file cannot be read or written."""


def save(directory, attachments):
    """Replace the state file with ``attachments`` (a list of dicts)."""
    path = os.path.join(directory, FILE_NAME)
    tmp = path + '.tmp'
    data = json.dumps({'version': VERSION, 'attachments': attachments}, indent=1,
                      sort_keys=True).encode()
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise StateFileError('cannot write %s: %s' % (path, exc)) from exc


def load(directory):
    """The attachments the state file lists; none if there is no file."""
    path = os.path.join(directory, FILE_NAME)
    try:
        with open(path, 'rb') as f:
            state = json.loads(f.read())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise StateFileError('cannot read %s: %s' % (path, exc)) from exc
    if not isinstance(state, dict) or state.get('version') != VERSION or not isinstance(
            state.get('attachments'), list):
        raise StateFileError('%s is not an edge state file of version %d' % (path, VERSION))
    return state['attachments']

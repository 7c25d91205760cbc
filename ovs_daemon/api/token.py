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

"""The vPool's control API token: one secret in a file, readable by root only."""


class TokenError(Exception):
    """The token file is missing, unreadable or empty."""


def read_token(path):
    try:
        with open(path) as f:
            token = f.read().strip()
    except OSError as exc:
        raise TokenError('cannot read the token file %s: %s' % (path, exc.strerror)) from None
    if not token:
        raise TokenError('the token file %s is empty' % path)
    return token

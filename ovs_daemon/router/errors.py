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

"""Errors of the router's control plane, each with the HTTP status it
answers with (see docs/control-api.md)."""


class RouterError(Exception):
    status = 500


class BadRequest(RouterError):
    status = 400


class Unauthorized(RouterError):
    status = 401


class Forbidden(RouterError):
    """The attachment token presented is not (or no longer) current."""
    status = 403


class NotFound(RouterError):
    status = 404


class Conflict(RouterError):
    status = 409


class Unavailable(RouterError):
    """ZooKeeper, the owner or a peer cannot be reached now; retry later."""
    status = 503


class PeerUnreachable(Unavailable):
    """Another router did not answer within the peer timeout: it may be
    dead or cut off. Failover acquire steals on this."""


class PeerError(RouterError):
    """Another router answered with an error; carries its status and type."""

    def __init__(self, status, error_type, message):
        super().__init__(message)
        self.status = status
        self.error_type = error_type

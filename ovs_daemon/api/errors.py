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

"""Errors of the control interfaces, one class per meaning: the routers'
HTTP API (docs/control-api.md) answers with their ``status`` and ``type``,
the edge's control socket (docs/edge.md) with their ``type``, and the
clients raise the same class for the answer they got."""


class ApiError(Exception):
    """An error answer, or no answer, from a control interface."""

    status = 500

    def __init__(self, message, status=None, error_type=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.type = error_type or type(self).__name__


class BadRequest(ApiError):
    """The request is malformed; nothing was changed."""
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    """The attachment token presented is not (or no longer) current."""
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Unavailable(ApiError):
    """ZooKeeper, the owner, a peer or every router cannot be reached now;
    retry later."""
    status = 503


class NoZooKeeperSession(Unavailable):
    """The router has no ZooKeeper session now: it can neither tell where a
    volume is nor move one. Another router may; when none has a session,
    ZooKeeper itself is away."""


class PeerUnreachable(Unavailable):
    """Another router did not answer within the peer timeout: it may be
    dead or cut off. Failover acquire steals on this."""


class MigrationFailed(ApiError):
    """The migration's target router did not answer or cannot take the
    volume; not retried on another router, which would only ask the same
    target again."""
    status = 502


class PeerError(ApiError):
    """Another router answered with an error; carries its status and type."""

    def __init__(self, status, error_type, message):
        super().__init__(message, status, error_type)


BY_STATUS = {cls.status: cls for cls in (BadRequest, Unauthorized, Forbidden, NotFound,
                                         Conflict, MigrationFailed, Unavailable)}

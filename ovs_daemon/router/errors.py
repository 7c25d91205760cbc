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

"""Errors of the volume engine, one type for each thing a caller acts on.

A backend's ``Fenced`` passes through unchanged: the caller halts on it.
"""


class VolumeError(Exception):
    """Base of the engine's errors."""


class OutOfRange(VolumeError, ValueError):
    """A request reaches outside the volume; nothing was changed."""


class InvalidRequest(VolumeError, ValueError):
    """A request's arguments are malformed; nothing was changed."""


class Halted(VolumeError):
    """This copy of the volume stopped serving: it was fenced, handed over or
    closed. It never serves again; the volume must be opened anew."""


class VolumeNotFound(VolumeError, LookupError):
    pass


class VolumeExists(VolumeError):
    pass


class SnapshotNotFound(VolumeError, LookupError):
    pass


class SnapshotExists(VolumeError):
    pass


"""Errors of the volume engine, one type for each thing a caller acts on."""

from ovs_daemon.backends.base import Fenced  # noqa: F401  (re-exported)


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


class HasDependents(VolumeError):
    """The operation would remove data a clone still reads."""

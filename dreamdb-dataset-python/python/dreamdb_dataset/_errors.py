"""Exception classes of :mod:`dreamdb_dataset`.

Every error raised by the native layer is a :class:`DreamDBError` whose
``kind`` is the stable id of the Rust ``DatasetError::kind()``:
``invalid-input``, ``invalid-schema``, ``invalid-name``, ``not-found``,
``already-exists``, ``conflict``, ``read-only``, ``integrity``, ``backend``,
``protocol``.
"""

from __future__ import annotations

from typing import Dict, Type

__all__ = [
    "DreamDBError",
    "InvalidInputError",
    "NotFoundError",
    "ConflictError",
    "AlreadyExistsError",
    "ReadOnlyError",
    "IntegrityError",
    "BackendError",
    "ProtocolError",
]


class DreamDBError(Exception):
    """Base class of every DreamDB error; ``kind`` names the class of failure."""

    kind: str = "protocol"

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind

    @property
    def message(self) -> str:
        """The error message (names the field, anchor or ref concerned)."""
        return str(self.args[0]) if self.args else ""


class InvalidInputError(DreamDBError, ValueError):
    """Input that cannot be stored or a bad schema/name (nothing was written).

    ``kind`` is ``invalid-input``, ``invalid-schema`` or ``invalid-name``.
    """

    kind = "invalid-input"


class NotFoundError(DreamDBError, LookupError):
    """No such dataset, ref, tag, Manifest or record (``kind == "not-found"``)."""

    kind = "not-found"


class ConflictError(DreamDBError):
    """A write lost its compare-and-swap after every retry, or a merge met a
    conflict (``kind == "conflict"``)."""

    kind = "conflict"


class AlreadyExistsError(ConflictError):
    """A dataset, branch or tag of that name exists (``kind == "already-exists"``)."""

    kind = "already-exists"


class ReadOnlyError(DreamDBError):
    """The handle is pinned to a version and cannot write (``kind == "read-only"``)."""

    kind = "read-only"


class IntegrityError(DreamDBError):
    """Stored bytes failed verification (``kind == "integrity"``)."""

    kind = "integrity"


class BackendError(DreamDBError, OSError):
    """The storage backend failed (``kind == "backend"``)."""

    kind = "backend"


class ProtocolError(DreamDBError):
    """A protocol-layer error not covered by the other classes (``kind == "protocol"``)."""

    kind = "protocol"


_BY_KIND: Dict[str, Type[DreamDBError]] = {
    "invalid-input": InvalidInputError,
    "invalid-schema": InvalidInputError,
    "invalid-name": InvalidInputError,
    "not-found": NotFoundError,
    "already-exists": AlreadyExistsError,
    "conflict": ConflictError,
    "read-only": ReadOnlyError,
    "integrity": IntegrityError,
    "backend": BackendError,
    "protocol": ProtocolError,
}


def _make(kind: str, message: str) -> DreamDBError:
    """The exception instance for a native error (called from Rust)."""
    cls = _BY_KIND.get(kind, DreamDBError)
    # One positional argument only: OSError reads two as (errno, strerror).
    exc = cls(message)
    exc.kind = kind
    return exc

"""The rules that tie a firmware version to exactly one image.

A rollout counts a node as updated when it comes back reporting the new version, so a version must name one
set of bytes and one set of bytes one version: otherwise "node reports 1.4.2" could mean either of two
images. These functions are pure; the caller supplies what is already stored (version → SHA-256).
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import VersionConflict
from .image import ImageInfo

MAX_VERSION_LENGTH = 64


def resolve_version(declared: str | None, info: ImageInfo) -> str:
    """The version of an upload: the one declared (``--version``, a form field), the image's own, or both.

    Raises :class:`VersionConflict` when both are given and differ (the node would report the image's, and the
    rollout would never see the declared one arrive), or when there is neither.
    """
    if declared is not None:
        check_version_text(declared)
        if info.version is not None and info.version != declared:
            raise VersionConflict(f"the image says version {info.version!r}, the upload says {declared!r}")
        return declared
    if not info.version:
        raise VersionConflict("the image carries no version (no app description): declare one")
    return check_version_text(info.version)


def check_version_text(version: str) -> str:
    """``version`` if it is 1–64 printable characters without surrounding spaces, else :class:`VersionConflict`."""
    if not version or len(version) > MAX_VERSION_LENGTH:
        raise VersionConflict(f"a version is 1 to {MAX_VERSION_LENGTH} characters, not {len(version)}")
    if not version.isprintable() or version != version.strip():
        raise VersionConflict(f"version {version!r} has control characters or surrounding spaces")
    return version


def check_new_image(version: str, sha256: str, known: Mapping[str, str]) -> bool:
    """Whether ``version`` with bytes ``sha256`` may be added, given ``known`` (version → SHA-256).

    Returns False for something new, True when exactly this pair is already known (a repeated upload: nothing
    to do). Raises :class:`VersionConflict` when the version already has other bytes, or these bytes are
    already another version.
    """
    existing = known.get(version)
    if existing == sha256:
        return True
    if existing is not None:
        raise VersionConflict(f"version {version} already exists with other bytes (sha256 {existing[:12]}…)")
    for other_version, other_sha256 in known.items():
        if other_sha256 == sha256:
            raise VersionConflict(f"these bytes are already version {other_version}")
    return False

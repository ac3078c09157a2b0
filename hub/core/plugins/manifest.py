"""What a plugin declares about itself: its name, version, dependencies and config sections.

Every plugin (built-in, first-party or third-party) sets a module (or class)
attribute ``MANIFEST = Manifest(...)``.  The loader reads it before calling any
hook: it orders set-up, start and stop by ``requires`` and ``after``, refuses
a plugin whose requirement is missing or failed, and checks that no two
plugins claim one config section.  A plugin without a manifest is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.core.errors import ManifestError

MANIFEST_ATTRIBUTE = "MANIFEST"


@dataclass(frozen=True)
class Manifest:
    """A plugin's declaration; see the module docstring."""

    name: str
    """The plugin's name: its entry-point name, what ``requires`` of other plugins refer to."""
    version: str | None = None
    """None (the usual): the version of the distribution that provides the plugin, the hub's for built-ins."""
    requires: tuple[str, ...] = ()
    """Plugins this one cannot work without: it is set up after them, and not at all if one is missing or failed."""
    after: tuple[str, ...] = ()
    """Plugins this one is set up and started after (and stopped before) when they are loaded; not needed."""
    sections: tuple[str, ...] = ()
    """The config.yaml sections this plugin owns; its ``hub_config_schema`` returns exactly these."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ManifestError(f"Manifest name must be a non-empty string, not {self.name!r}")
        if self.version is not None and not isinstance(self.version, str):
            raise ManifestError(f"Manifest {self.name!r}: version must be a string or None, not {self.version!r}")
        for field in ("requires", "after", "sections"):
            value = getattr(self, field)
            # A bare string would be read as its characters: requires="http" means requires=("h", "t", "t", "p").
            if isinstance(value, str) or not all(isinstance(item, str) and item for item in value):
                raise ManifestError(
                    f"Manifest {self.name!r}: {field} must be a tuple of names, e.g. {field}=({value!r},)"
                    if isinstance(value, str)
                    else f"Manifest {self.name!r}: {field} must be a tuple of non-empty names, not {value!r}"
                )
            object.__setattr__(self, field, tuple(value))


def manifest_of(plugin: Any, name: str) -> Manifest:
    """The manifest of ``plugin``, registered as ``name``; ManifestError says why there is none usable."""
    manifest = getattr(plugin, MANIFEST_ATTRIBUTE, None)
    if manifest is None:
        raise ManifestError(
            f"declares no manifest: add {MANIFEST_ATTRIBUTE} = hub.Manifest(name={name!r}, …) to the plugin module"
        )
    if not isinstance(manifest, Manifest):
        raise ManifestError(f"its {MANIFEST_ATTRIBUTE} is a {type(manifest).__name__}, not a hub.Manifest")
    if manifest.name != name:
        raise ManifestError(f"its manifest names it {manifest.name!r}, but it is registered as {name!r}")
    return manifest

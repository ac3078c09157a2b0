"""The hub plugin: for now only the ``ota:`` config section.

Registered through the ``hub`` entry-point group of the ``hub-ota`` distribution. Image validation
(:mod:`hub_ota.image`) and the firmware store (:mod:`hub_ota.store`) are ready for the upload, serving and
rollout parts to build on.
"""

from __future__ import annotations

from typing import Any

from hub import Manifest, hookimpl

from .config import CONFIG_SCHEMA, SECTION

MANIFEST = Manifest(name="ota", sections=(SECTION,))
"""For now it needs no other plugin: it only validates and stores images (the rollout will declare what it uses)."""


@hookimpl
def hub_config_schema() -> dict[str, Any]:
    """The ``ota:`` section (size limit, firmware directory)."""
    return {SECTION: CONFIG_SCHEMA}

"""hub-ota: ESP32 firmware for over-the-air updates, for the ``hub`` IoT hub.

:mod:`hub_ota.image` validates an ESP32 application image, :mod:`hub_ota.store` keeps images on disk by
content, :mod:`hub_ota.versions` holds the rules that tie a version to exactly one image.
"""

__version__ = "0.1.0"
"""The distribution's version: the one place it is written (pyproject.toml reads it from here)."""

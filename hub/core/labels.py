"""Areas and tags: how a node's place and labels are spelled, checked once for every way of setting them.

A node has at most one area (where it is: ``greenhouse 2``) and any number of
tags (what it is: ``beta``, ``relay-board``).  REST, the CLI, config.yaml and
plugins all set them through :meth:`~hub.core.registry.NodeRegistry.update_node`,
which normalises them here, so the same label is spelled the same way whoever
wrote it:

* both are stripped and runs of whitespace become one space; control
  characters are refused;
* a tag is lower-cased (tags are identifiers: ``Beta`` and ``beta`` are one
  tag), may not contain a comma (lists of tags are written ``beta,canary`` in
  a query string), and has 1–:data:`MAX_TAG_LENGTH` characters; a node has at
  most :data:`MAX_TAGS`, kept sorted and without duplicates;
* an area keeps its case (it is a name people read), has
  1–:data:`MAX_AREA_LENGTH` characters, and is compared ignoring case
  (:func:`area_key`), so ``Greenhouse 2`` and ``greenhouse 2`` are one area.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

MAX_TAGS = 32
"""Tags a node may have."""
MAX_TAG_LENGTH = 40
"""Characters in one tag."""
MAX_AREA_LENGTH = 100
"""Characters in an area's name."""


def _clean(value: object, what: str, max_length: int) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, not {type(value).__name__}")
    if len(value) > max_length:
        raise ValueError(f"{what} {value[:20]!r}… is longer than {max_length} characters")
    if any(unicodedata.category(char) == "Cc" and not char.isspace() for char in value):
        raise ValueError(f"{what} {value!r} contains a control character")
    cleaned = " ".join(value.split())
    if not cleaned:
        raise ValueError(f"{what} must not be empty")
    return cleaned


def normalize_area(value: object) -> str | None:
    """The area as stored: None stays None (no area); ValueError for anything that is not a valid name."""
    if value is None:
        return None
    return _clean(value, "area", MAX_AREA_LENGTH)


def area_key(area: str) -> str:
    """What areas are compared by: ``area_key("Greenhouse 2") == area_key("greenhouse  2")``."""
    return " ".join(area.split()).casefold()


def normalize_tag(value: object) -> str:
    """One tag as stored (stripped, lower-case); ValueError if it is not a valid tag."""
    tag = _clean(value, "tag", MAX_TAG_LENGTH).lower()
    if "," in tag:
        raise ValueError(f"tag {tag!r} contains a comma")
    if len(tag) > MAX_TAG_LENGTH:  # lower() can lengthen a few characters
        raise ValueError(f"tag {tag!r} is longer than {MAX_TAG_LENGTH} characters")
    return tag


def normalize_tags(values: Iterable[object]) -> list[str]:
    """Tags as stored: each normalised, duplicates dropped, sorted; ValueError for a bad tag or too many."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValueError(f"tags must be a list of strings, not {type(values).__name__}")
    tags = sorted({normalize_tag(value) for value in values})
    if len(tags) > MAX_TAGS:
        raise ValueError(f"a node has at most {MAX_TAGS} tags, not {len(tags)}")
    return tags

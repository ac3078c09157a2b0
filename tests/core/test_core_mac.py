"""MAC addresses: every accepted spelling maps to the one canonical form; anything else is refused."""

from __future__ import annotations

import pytest

from hub.core.errors import HubError, InvalidMac
from hub.core.mac import is_mac, normalize_mac

CANONICAL = "aa:bb:cc:0d:ee:f1"


@pytest.mark.parametrize(
    "spelling",
    [
        "aa:bb:cc:0d:ee:f1",
        "AA:BB:CC:0D:EE:F1",  # WiFi.macAddress()
        "Aa:bB:cC:0d:Ee:F1",
        "aa-bb-cc-0d-ee-f1",
        "AA-BB-CC-0D-EE-F1",  # Windows tooling
        "aa.bb.cc.0d.ee.f1",
        "aabbcc0deef1",  # ESPHome topic suffixes
        "AABBCC0DEEF1",
        "aabb.cc0d.eef1",  # Cisco style
        "AABB.CC0D.EEF1",
    ],
)
def test_accepted_spellings(spelling):
    assert normalize_mac(spelling) == CANONICAL
    assert is_mac(spelling)


def test_canonical_is_a_fixed_point():
    assert normalize_mac(normalize_mac("AABBCC0DEEF1")) == CANONICAL


@pytest.mark.parametrize(
    "value",
    [
        "",
        "aa:bb:cc:dd:ee",  # too short
        "aa:bb:cc:dd:ee:ff:00",  # too long
        "aa:bb:cc:dd:ee:fg",  # not hex
        "aa:bb-cc:dd:ee:ff",  # mixed separators
        "aa:bb:cc:dd:ee-ff",
        "aa_bb_cc_dd_ee_ff",  # unknown separator
        "aab:bcc:dde:eff",
        "a:ab:bc:cd:de:eff",  # separators in the wrong places
        "aabbccddeef",  # 11 digits
        "aabbccddeeff0",  # 13 digits
        "aabb.ccdd:eeff",
        "aabbc.cdde.eff",
        " aa:bb:cc:dd:ee:ff",  # whitespace is not trimmed silently
        "aa:bb:cc:dd:ee:ff\n",
        "ａａ:bb:cc:dd:ee:ff",  # full-width letters
        "+a:bb:cc:dd:ee:ff",
        "devices/aa:bb",
    ],
)
def test_rejected(value):
    with pytest.raises(InvalidMac) as caught:
        normalize_mac(value)
    assert caught.value.value == value
    assert repr(value) in str(caught.value)
    assert not is_mac(value)


@pytest.mark.parametrize("value", [None, 0xAABBCCDDEEFF, b"aabbccddeeff", ["aa"]])
def test_non_strings_are_rejected_with_the_same_error(value):
    with pytest.raises(InvalidMac):
        normalize_mac(value)  # type: ignore[arg-type]


def test_invalid_mac_is_a_value_error_and_a_hub_error():
    assert issubclass(InvalidMac, ValueError) and issubclass(InvalidMac, HubError)

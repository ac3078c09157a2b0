"""config.yaml fuzz: generated YAML and mutations of the real configs never raise a traceback, always file:line.

What ``hub check-config`` and ``hub run`` do with a config file (``build_hub``:
every installed plugin's sections, the loader with ``!secret``, ``!include`` and
``!env_var``) runs on documents Hypothesis writes from YAML's own tokens and on
the shipped ``config.yaml`` and the YAML examples of the docs with bytes
deleted, repeated, swapped or inserted.  The result must be a hub or a
:class:`ConfigError` whose every line starts with ``file:line:``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from fuzzing import HOSTILE_TEXT, fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from hub.core.bootstrap import build_hub, load_plugins
from hub.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = 300
LOCATED = re.compile(r"^[\w.\-/]+\.yaml:\d+: \S")
"""``config.yaml:12: …`` or ``sub/mqtt.yaml:3: …``: a file and a line, then the message."""


def _yaml_blocks(path: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", path.read_text(), flags=re.S)


SEEDS = [
    (REPO / "config.yaml").read_text(),
    *_yaml_blocks(REPO / "docs" / "config.md"),
    *_yaml_blocks(REPO / "README.md"),
]
"""The shipped config.yaml and every YAML example of the docs."""

TOKENS = st.sampled_from(
    [
        "mqtt:",
        "storage:",
        "http:",
        "hub:",
        "presence:",
        "broker:",
        "esphome:",
        "ota:",
        "nodes:",
        "limits:",
        "port: ",
        "broker: ",
        "db_url: ",
        "data_dir: ",
        "max_nodes: ",
        "timeout: ",
        "host: ",
        "mac: ",
        "name: ",
        "\n",
        "\n  ",
        "\n    ",
        "\n- ",
        "\n  - ",
        "\t",
        " ",
        ": ",
        "- ",
        "? ",
        ", ",
        "[",
        "]",
        "{",
        "}",
        "'",
        '"',
        "#",
        "|",
        ">",
        "&a ",
        "*a",
        "&b ",
        "*b",
        "<<: *a",
        "---\n",
        "...\n",
        "%YAML 1.1\n",
        "%TAG ! tag:x,2000:\n",
        "!secret ",
        "!secret db",
        "!include ",
        "!include inc.yaml",
        "!include ../../etc/passwd",
        "!include /",
        "!include .",
        "!include sub",
        '!include "a\\0b"',
        "!env_var ",
        "!env_var HUB_FUZZ_UNSET 1",
        "!env_var X [1",
        "!env_var HUB_FUZZ_SET {",
        "!!python/object/apply:os.system ['true']",
        "!!binary AAAA",
        "!!set {a}",
        "!!omap [a: 1]",
        "!!bool maybe",
        "!!timestamp soon",
        "[" * 3000,
        "{a: " * 3000,
        "!!int x",
        "!!float 1",
        "!!str",
        "!unknown x",
        "~",
        "null",
        "true",
        "yes",
        "0x1F",
        "0o17",
        "1e999",
        "-1e999",
        ".inf",
        ".nan",
        "-0",
        "99999999999999999999999999",
        "1_000",
        "2001-12-14",
        "12:30:00",
        "\\x00",
        "\x00",
        "\x07",
        "\ufeff",
        "\u2028",
        "é",
        "💡",
        "a" * 300,
    ]
)
DOCUMENTS = st.lists(TOKENS | HOSTILE_TEXT, max_size=40).map("".join)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """One of the real configs with up to five edits: delete, repeat, swap lines, insert a token or a character."""
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["delete", "repeat", "insert", "swap"]))
        if edit == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 20)) :]
        elif edit == "repeat":
            text = text[:at] + text[at : at + draw(st.integers(1, 40))] + text[at:]
        elif edit == "insert":
            text = text[:at] + draw(TOKENS | st.characters()) + text[at:]
        else:
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return text


HOSTILE_SCALARS = st.sampled_from(
    [
        ".inf",
        "-.inf",
        ".nan",
        "1e999",
        "-1",
        "0",
        "99999999999999999999999999",
        "-99999999999999999999",
        "1.5",
        "true",
        "null",
        "~",
        "''",
        "'x'",
        "[]",
        "{}",
        "[1, .inf]",
        "{a: .nan}",
        "!!binary AAAA",
        "2001-12-14",
        "0x7fffffffffffffff",
        "mqtt://u:pw-secret@h:99999",
        "'sqlite:///:memory:'",
        "'../../etc'",
        "'\\x00'",
        "!secret db",
        "!env_var HUB_FUZZ_UNSET .inf",
        "*a",
        "&a 5",
    ]
)
"""Values for a known key: the numbers and shapes validators trip over (infinity, NaN, huge, wrong type)."""


def _schema_keys(plugins) -> dict[str, list[str]]:
    """Every section's top-level keys, read from the loaded schemas (the core's and every plugin's)."""
    from hub.core.config import CORE_SCHEMAS
    from hub.core.config.validation import _key_name, _schema_dict
    from hub.core.plugins.sections import config_schemas

    keys = {}
    for section, schema in {**CORE_SCHEMAS, **config_schemas(plugins)}.items():
        found = _schema_dict(schema)
        keys[section] = [str(_key_name(key)) for key in found] if found else ["x"]
    return keys


@pytest.fixture(scope="module")
def plugins():
    """Every installed plugin, as ``hub check-config`` loads them (their sections are validated too)."""
    return load_plugins()


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config folder with a private secrets.yaml, an included file and a sub folder, as a real setup has."""
    (tmp_path / "secrets.yaml").write_text("db: sqlite:///hub.db\nmqtt_url: mqtt://hub:pw-secret@127.0.0.1:1883\n")
    (tmp_path / "secrets.yaml").chmod(0o600)
    (tmp_path / "inc.yaml").write_text("port: 1883\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.setenv("HUB_FUZZ_SET", "{not yaml")
    monkeypatch.delenv("HUB_FUZZ_UNSET", raising=False)
    return tmp_path


def check(plugins, path: Path, text: str | bytes) -> None:
    """Load ``text`` as config.yaml as check-config does: a hub, or ConfigError lines that each name file:line."""
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        build_hub(path, plugins=plugins)
    except ConfigError as err:
        for line in err.messages:
            assert LOCATED.match(line), f"not file:line: {line!r}"
            assert "pw-secret" not in line, f"a secret in an error: {line!r}"


def test_generated_documents(plugins, config_dir: Path) -> None:
    path = config_dir / "config.yaml"

    @fuzz_settings(EXAMPLES)
    @given(text=DOCUMENTS)
    def run(text: str) -> None:
        check(plugins, path, text)

    run()


def test_mutated_real_configs(plugins, config_dir: Path) -> None:
    path = config_dir / "config.yaml"

    @fuzz_settings(EXAMPLES // 2)  # the shipped config.yaml is long: each example costs more
    @given(text=mutated())
    def run(text: str) -> None:
        check(plugins, path, text)

    run()


def test_every_key_of_every_section_with_hostile_values(plugins, config_dir: Path) -> None:
    path = config_dir / "config.yaml"
    keys = _schema_keys(plugins)
    sections = sorted(keys)
    pairs = st.sampled_from(sections).flatmap(
        lambda section: st.tuples(st.just(section), st.sampled_from(keys[section]))
    )

    @fuzz_settings(EXAMPLES // 2)
    @given(entries=st.lists(st.tuples(pairs, HOSTILE_SCALARS), min_size=1, max_size=6))
    def run(entries: list[tuple[tuple[str, str], str]]) -> None:
        by_section: dict[str, dict[str, str]] = {}
        for (section, key), value in entries:
            by_section.setdefault(section, {})[key] = value
        text = "".join(
            f"{section}:\n" + "".join(f"  {key}: {value}\n" for key, value in values.items())
            for section, values in by_section.items()
        )
        check(plugins, path, text)

    run()


def test_raw_bytes(plugins, config_dir: Path) -> None:
    path = config_dir / "config.yaml"

    @fuzz_settings(EXAMPLES // 3)
    @given(data=st.binary(max_size=200) | st.sampled_from([b"mqtt:\n  host: \xff\xfe\n", b"\xef\xbb\xbfhub: {}\n"]))
    def run(data: bytes) -> None:
        check(plugins, path, data)

    run()


def test_the_seeds_themselves_are_valid_or_located(plugins, config_dir: Path) -> None:
    assert len(SEEDS) >= 3
    for seed in SEEDS:
        check(plugins, config_dir / "config.yaml", seed)
    assert os.environ.get("HUB_FUZZ_SET") == "{not yaml"

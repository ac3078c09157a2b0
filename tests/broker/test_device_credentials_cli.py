"""`hub device credentials add/list/remove/sync`, run in-process through the real command line."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from hub.core.cli import main
from hub.plugins.broker.acl import BLOCK_BEGIN, BLOCK_END
from hub.plugins.broker.credentials import CredentialStore, verify_pbkdf2
from hub.testing import unavailable

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """config.yaml pointing at a Mosquitto password file (with the hub's line) and a copy of deploy/mosquitto.acl."""
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    passwd.write_text("hub:$7$101$c2FsdHNhbHRzYWx0$aGFzaA==\n")
    os.chmod(passwd, 0o640)
    shutil.copy(REPO / "deploy" / "mosquitto.acl", acl)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"hub:\n  data_dir: {tmp_path / 'data'}\nbroker:\n  mosquitto:\n    password_file: {passwd}\n    acl_file: {acl}\n"
    )
    return config, passwd, acl


def run(capsys, config: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["device", "credentials", *argv, "-c", str(config)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_add_prints_the_password_once_and_writes_only_hashes(files, capsys) -> None:
    config, passwd, acl = files
    code, out, err = run(capsys, config, "add", "24:6F:28:AA:00:01")
    password = out.strip()
    assert code == 0 and len(password) == 32 and "shown only now" in err and "systemctl reload mosquitto" in err
    store_file = config.parent / "data" / "device-credentials.json"
    assert stat.S_IMODE(store_file.stat().st_mode) == 0o600
    for path in (store_file, passwd, acl):
        assert password not in path.read_text()
    device = CredentialStore.in_dir(config.parent / "data").devices["246f28aa0001"]
    assert device.mac == "24:6f:28:aa:00:01" and verify_pbkdf2(device.password_hash, password)
    assert passwd.read_text().splitlines() == [
        "hub:$7$101$c2FsdHNhbHRzYWx0$aGFzaA==",
        f"246f28aa0001:{device.password_hash}",
    ]
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o640  # the file keeps its mode (and owner)

    code, out, err = run(capsys, config, "add", "246f28aa0001")
    assert code == 1 and out == "" and "already has credentials" in err
    code, out, err = run(capsys, config, "add", "246f28aa0001", "--replace")
    assert code == 0 and out.strip() != password
    replaced = CredentialStore.in_dir(config.parent / "data").devices["246f28aa0001"]
    assert not verify_pbkdf2(replaced.password_hash, password) and verify_pbkdf2(replaced.password_hash, out.strip())
    assert passwd.read_text().count("246f28aa0001:") == 1


def test_esphome_names_are_bound_once_and_never_to_a_topic_root_the_hub_uses(files, capsys) -> None:
    config, _passwd, acl = files
    for name, why in (
        ("devices", "topic root"),
        ("homeassistant", "topic root"),
        ("esphome", "topic root"),
        ("storage", "topic root"),  # a plugin's name is its topic prefix
        ("Kitchen", "not an ESPHome node name"),
        ("a/b", "not an ESPHome node name"),
    ):
        code, out, err = run(capsys, config, "add", "246f28aa0001", "--esphome", name)
        assert (code, out) == (1, "") and why in err, name
    assert run(capsys, config, "add", "246f28aa0001", "--esphome", "kitchen")[0] == 0
    code, _out, err = run(capsys, config, "add", "246f28aa0002", "--esphome", "kitchen")
    assert code == 1 and "belongs to 246f28aa0001" in err
    assert run(capsys, config, "add", "246f28aa0002")[0] == 0
    block = acl.read_text().split(BLOCK_BEGIN)[1].split(BLOCK_END)[0]
    assert "user 246f28aa0001\ntopic readwrite kitchen/#\n" in block
    assert "topic write homeassistant/+/kitchen/+/config\n" in block and "246f28aa0002" not in block
    assert acl.read_text().startswith((REPO / "deploy" / "mosquitto.acl").read_text().split(BLOCK_BEGIN)[0])

    code, out, _err = run(capsys, config, "list", "--json")
    listed = json.loads(out)
    assert [(d["username"], d["mac"], d["esphome_name"]) for d in listed] == [
        ("246f28aa0001", "24:6f:28:aa:00:01", "kitchen"),
        ("246f28aa0002", "24:6f:28:aa:00:02", None),
    ]
    assert "hash" not in out


def test_remove_and_sync_keep_mosquitto_in_line_with_the_store(files, capsys) -> None:
    config, passwd, acl = files
    run(capsys, config, "add", "246f28aa0001", "--esphome", "kitchen")
    run(capsys, config, "add", "246f28aa0002")
    code, _out, err = run(capsys, config, "remove", "24:6f:28:aa:00:01")
    assert code == 0 and "Removed" in err
    assert [line.split(":")[0] for line in passwd.read_text().splitlines()] == ["hub", "246f28aa0002"]
    assert "kitchen" not in acl.read_text()
    assert run(capsys, config, "remove", "246f28aa0001")[0] == 1

    passwd.write_text("hub:$7$101$c2FsdHNhbHRzYWx0$aGFzaA==\n")  # e.g. a password file restored from before
    acl.write_text("user hub\ntopic readwrite #\n")
    assert run(capsys, config, "sync")[0] == 0
    assert [line.split(":")[0] for line in passwd.read_text().splitlines()] == ["hub", "246f28aa0002"]
    assert acl.read_text().startswith(f"user hub\ntopic readwrite #\n{BLOCK_BEGIN}\n")  # the block, appended


def test_bad_input_and_missing_files_are_clear_errors(files, capsys, tmp_path) -> None:
    config, passwd, _acl = files
    code, out, err = run(capsys, config, "add", "not-a-mac")
    assert (code, out) == (1, "") and "error:" in err
    passwd.unlink()
    code, out, err = run(capsys, config, "add", "246f28aa0001")
    assert code == 1 and out == "" and f"mosquitto_passwd -c {passwd} hub" in err
    bare = tmp_path / "bare.yaml"
    bare.write_text(f"hub:\n  data_dir: {tmp_path / 'bare'}\n")
    code, _out, err = run(capsys, bare, "sync")
    assert code == 1 and "no Mosquitto files" in err


def test_hashes_are_those_of_mosquitto_passwd(tmp_path) -> None:
    """The $7$ check accepts what mosquitto_passwd writes (Mosquitto accepting ours is in test_mosquitto_acl.py)."""
    binary = shutil.which("mosquitto_passwd")
    if binary is None:
        unavailable("mosquitto_passwd is not installed (apt-get install mosquitto)")
    path = tmp_path / "passwd"
    subprocess.run([binary, "-c", "-b", str(path), "dev", "s3cret-pw"], check=True)
    written = path.read_text().strip().split(":", 1)[1]
    assert written.startswith("$7$") and verify_pbkdf2(written, "s3cret-pw") and not verify_pbkdf2(written, "s3cret")

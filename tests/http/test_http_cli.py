"""`hub user …`, `hub token …` and `hub run --http-port`, run in-process through the real command line."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import pytest

from hub.core.bootstrap import build_hub, load_plugins
from hub.core.cli import build_parser, main
from hub.plugins.http.auth.manager import AuthManager
from hub.plugins.http.auth.store import AuthStore

PASSWORD = "a long enough password"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"hub:\n  data_dir: {tmp_path / 'data'}\n")
    return path


def run(monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(list(argv))


def test_user_create_list_password_delete(config: Path, monkeypatch, capsys) -> None:
    assert run(monkeypatch, "user", "create", "-c", str(config), "--username", "alice", stdin=PASSWORD + "\n") == 0
    assert "owner 'alice'" in capsys.readouterr().err
    assert run(monkeypatch, "user", "create", "-c", str(config), "--username", "ALICE", stdin=PASSWORD + "\n") == 1
    assert "already exists" in capsys.readouterr().err
    assert run(monkeypatch, "user", "create", "-c", str(config), "--username", "bob", stdin="short\n") == 1
    assert "at least 8" in capsys.readouterr().err
    assert run(monkeypatch, "user", "create", "-c", str(config), "--username", "b o b", stdin=PASSWORD + "\n") == 1
    assert run(monkeypatch, "user", "list", "-c", str(config), "--json") == 0
    users = json.loads(capsys.readouterr().out)
    assert [(u["username"], u["is_owner"]) for u in users] == [("alice", True)]
    assert "password" not in json.dumps(users)
    auth = AuthManager(AuthStore.in_dir(config.parent / "data"), time.time)
    assert asyncio.run(auth.login("alice", PASSWORD, "127.0.0.1"))["access_token"].startswith("hat.")

    assert run(monkeypatch, "user", "password", "-c", str(config), stdin="another long password\n") == 0
    store = AuthStore.in_dir(config.parent / "data")
    assert store.user_by_name("alice") is not None
    assert run(monkeypatch, "user", "delete", "-c", str(config), "--username", "alice") == 0
    assert AuthStore.in_dir(config.parent / "data").users == {}


def test_token_create_list_revoke(config: Path, monkeypatch, capsys) -> None:
    assert run(monkeypatch, "token", "create", "-c", str(config), "--name", "prom") == 1
    assert "no user exists yet" in capsys.readouterr().err
    run(monkeypatch, "user", "create", "-c", str(config), "--username", "alice", stdin=PASSWORD + "\n")
    capsys.readouterr()
    assert run(monkeypatch, "token", "create", "-c", str(config), "--name", "prometheus", "--days", "30") == 0
    out = capsys.readouterr()
    token = out.out.strip()
    assert token.startswith("hlt.") and "shown only now" in out.err
    auth = AuthManager(AuthStore.in_dir(config.parent / "data"), time.time)
    assert auth.authenticate(token).user.username == "alice"

    assert run(monkeypatch, "token", "list", "-c", str(config), "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in listed] == ["prometheus"] and token not in json.dumps(listed)
    assert listed[0]["expires"] is not None

    assert run(monkeypatch, "token", "revoke", "-c", str(config), listed[0]["id"]) == 0
    assert run(monkeypatch, "token", "revoke", "-c", str(config), listed[0]["id"]) == 1
    assert AuthStore.in_dir(config.parent / "data").tokens == {}


def test_hub_run_http_port_overrides_the_config(config: Path) -> None:
    config.write_text(config.read_text() + "http:\n  port: 8000\n")
    plugins = load_plugins()
    args = build_parser(plugins).parse_args(["run", "-c", str(config), "--http-port", "9123"])
    hub = build_hub(config, plugins=plugins)
    hub.plugins.call_sync("hub_run_config", config=hub.config, args=args)
    assert hub.config["http"]["port"] == 9123
    args = build_parser(plugins).parse_args(["run", "-c", str(config)])
    hub = build_hub(config, plugins=plugins)
    hub.plugins.call_sync("hub_run_config", config=hub.config, args=args)
    assert hub.config["http"]["port"] == 8000
    with pytest.raises(SystemExit):
        build_parser(plugins).parse_args(["run", "--http-port", "70000"])

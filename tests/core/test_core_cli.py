"""The ``hub`` command line, run as a real subprocess the way a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.core.cli import main

HUB = str(Path(sys.executable).parent / "hub")


def hub_env(allow: str | None = "", extra_path: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("HUB_LOAD_PLUGINS", None)
    if allow is not None:
        env["HUB_LOAD_PLUGINS"] = allow  # "" = no installed plugins: only the built-ins
    if extra_path is not None:
        env["PYTHONPATH"] = str(extra_path)
    return env


def run(*args: str, cwd: Path, allow: str | None = "", extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = hub_env(allow, extra_path)
    return subprocess.run([HUB, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_check_config_valid(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("hub:\n  name: greenhouse\npresence:\n  timeout: 20\n")
    result = run("check-config", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{config}: valid" in result.stdout and "presence" in result.stdout


def test_check_config_defaults_to_config_yaml_in_the_current_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "config.yaml").write_text("hub:\n  name: here\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUB_LOAD_PLUGINS", "")
    assert main(["check-config"]) == 0
    assert "config.yaml: valid" in capsys.readouterr().out


def test_check_config_invalid_lists_every_problem_with_file_and_line(tmp_path):
    (tmp_path / "presence.yaml").write_text("timeout: soon\n")
    config = tmp_path / "config.yaml"
    config.write_text("hub:\n  name: x\n  log_levle: debug\npresense: {}\npresence: !include presence.yaml\n")
    result = run("check-config", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Invalid config ({config}):",
        "  config.yaml:4: unknown section 'presense', did you mean 'presence'?",
        "  config.yaml:3: hub: unknown key 'log_levle', did you mean 'log_level'?",
        "  presence.yaml:1: presence -> timeout: expected float, got 'soon'",
    ]


def test_check_config_missing_file_is_not_valid(tmp_path):
    result = run("check-config", "-c", str(tmp_path / "conifg.yaml"), cwd=tmp_path)
    assert result.returncode == 1
    assert "conifg.yaml: no such file" in result.stderr


@pytest.mark.parametrize("command", ["nodes", "run", "db upgrade", "plugins"])
def test_a_named_config_file_that_is_missing_is_an_error_and_creates_nothing(tmp_path, command):
    result = run(*command.split(), "-c", "missing.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["Invalid config (missing.yaml):", "  missing.yaml: no such file"]
    assert list(tmp_path.iterdir()) == [], "no data directory, no database"


def test_a_missing_default_config_means_the_built_in_defaults(tmp_path):
    result = run("nodes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "0 node(s)"
    assert (tmp_path / "hub-data" / "hub.db").exists()


@pytest.mark.parametrize(
    "command", [["plugins", "--json"], ["plugins"], ["nodes", "--json"]], ids=["plugins-json", "plugins", "nodes-json"]
)
def test_output_into_a_pipe_nobody_reads_ends_quietly(tmp_path, command):
    """The reader is gone before the first byte, as with `| head` once it has its line: no traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [HUB, *command], cwd=tmp_path, env=hub_env(), stdout=write_end, stderr=subprocess.PIPE, timeout=60
        )
    finally:
        os.close(write_end)
    assert result.stderr.decode() == ""
    assert result.returncode == 141  # 128 + SIGPIPE, what a shell reports for a tool stopped by a closed pipe


def test_plugins_json_piped_into_head(tmp_path):
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; '{HUB}' plugins --json | head -1"],
        cwd=tmp_path,
        env=hub_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout == "{\n"
    assert result.stderr == ""
    assert result.returncode in (0, 141)  # 141 when head had gone before the hub finished writing


def test_plugins_lists_the_builtins(tmp_path):
    result = run("plugins", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert {"storage", "broker", "mqtt", "presence"} <= set(names)
    presence = next(line for line in result.stdout.splitlines() if line.startswith("presence"))
    assert "builtin" in presence and "hub_setup" in presence


def test_plugins_json_with_an_installed_distribution(tiny_distribution, monkeypatch, capsys):
    """In-process (the distribution is on this process's sys.path); the table form is tested above."""
    monkeypatch.setenv("HUB_LOAD_PLUGINS", "tinygood,tinybroken")
    assert main(["plugins", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    loaded = {row["name"]: row for row in listing["loaded"]}
    assert loaded["tinygood"]["version"] == "1.2.3" and loaded["tinygood"]["source"] == "tiny-hub-plugins"
    assert loaded["presence"]["source"] == "builtin"
    assert "hub_dependency_that_is_not_installed" in listing["failed"]["tinybroken"]
    assert main(["plugins"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert any(line.startswith("tinybroken") and "FAILED" in line for line in table)


def test_no_command_prints_help_and_exits_2(monkeypatch, capsys):
    monkeypatch.setenv("HUB_LOAD_PLUGINS", "")
    assert main([]) == 2
    assert "check-config" in capsys.readouterr().out


def test_version(monkeypatch, capsys):
    from hub import __version__

    monkeypatch.setenv("HUB_LOAD_PLUGINS", "")
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"hub {__version__}"

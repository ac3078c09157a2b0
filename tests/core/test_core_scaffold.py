"""``hub plugin new``: names, refusals, what it writes, and that what it writes installs, passes its own tests,
is listed by ``hub plugins`` and loaded by ``hub run``, unchanged.

The end-to-end test installs the new plugin into a scratch environment (a venv of its own that sees this
environment's packages through a ``.pth`` file), never into this one: an extra installed plugin would change
what other tests load.  ``pytest -s`` prints how long each step took.
"""

from __future__ import annotations

import fnmatch
import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
import tomllib
from pathlib import Path

import pytest

from hub import __version__
from hub.core.cli import main
from hub.core.scaffold import PluginNames, ScaffoldError, new_plugin
from hub.testing import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "hub" / "core" / "scaffold" / "templates"
FILES = [
    "README.md",
    "pyproject.toml",
    "src/hub_weather/__init__.py",
    "src/hub_weather/config.py",
    "src/hub_weather/plugin.py",
    "tests/test_plugin.py",
]


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


@pytest.mark.parametrize("name", ["weather", "my-sensor", "my_sensor", "esp32", "a1-b2_c3"])
def test_valid_names(name: str) -> None:
    names = PluginNames.of(name)
    assert names.name == name.replace("-", "_")
    assert names.distribution == "hub-" + name.replace("_", "-")
    assert names.package == "hub_" + name.replace("-", "_")


@pytest.mark.parametrize("name", ["", "Weather", "1st", "my--sensor", "my sensor", "-x", "x_", "wéather", "a.b"])
def test_invalid_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match="invalid plugin name"):
        new_plugin(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["hub", "storage", "mqtt", "http"])
def test_the_cores_and_the_builtins_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match=f"a plugin named '{name}' is already built in or installed"):
        new_plugin(name, tmp_path)


def test_an_installed_plugins_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match="a plugin named 'esp32_node' is already built in or installed"):
        new_plugin("esp32-node", tmp_path, taken=["esp32_node"])


def test_the_command_writes_the_distribution_and_says_what_next(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HUB_LOAD_PLUGINS", "")
    assert main(["plugin", "new", "weather", "--dir", str(tmp_path)]) == 0
    target = tmp_path / "hub-weather"
    assert files_under(target) == FILES
    out = capsys.readouterr().out
    assert out.startswith(f"Wrote {target}/:\n  README.md\n")
    assert f"cd {target}\n  pip install -e '.[test]'\n  pytest\n  hub plugins\n" in out


def test_an_existing_folder_that_is_not_empty_is_refused(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HUB_LOAD_PLUGINS", "")
    (tmp_path / "hub-weather").mkdir()
    assert main(["plugin", "new", "weather", "--dir", str(tmp_path)]) == 0  # empty: used
    readme = tmp_path / "hub-weather" / "README.md"
    readme.write_text("mine")
    capsys.readouterr()
    assert main(["plugin", "new", "weather", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert (
        err
        == f"error: {tmp_path / 'hub-weather'} already exists and is not an empty folder: choose another --dir or remove it\n"
    )
    assert readme.read_text() == "mine"


def test_a_bad_name_exits_1_with_the_rule(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HUB_LOAD_PLUGINS", "")
    assert main(["plugin", "new", "My Plugin", "--dir", str(tmp_path)]) == 1
    assert "error: invalid plugin name 'My Plugin': use lower-case letters" in capsys.readouterr().err


def test_the_pyproject(tmp_path: Path) -> None:
    target = new_plugin("my-sensor", tmp_path, description='Reads "the" sensor \\ fast')
    pyproject = tomllib.loads((target / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert pyproject["build-system"]["requires"] == ["setuptools>=77"]
    assert project["name"] == "hub-my-sensor"
    assert project["description"] == 'Reads "the" sensor \\ fast'
    assert project["license"] == "Apache-2.0"
    assert project["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "hub_my_sensor.__version__"}
    major_minor = ".".join(__version__.split(".")[:2])
    assert f"hub-core>={major_minor}" in project["dependencies"]
    assert project["optional-dependencies"]["test"] == ["pytest>=8", "pytest-asyncio>=0.24"]
    assert project["entry-points"]["hub"] == {"my_sensor": "hub_my_sensor.plugin"}
    assert pyproject["tool"]["pytest"]["ini_options"]["asyncio_mode"] == "auto"
    assert 'MANIFEST = Manifest(name="my_sensor"' in (target / "src/hub_my_sensor/plugin.py").read_text()


def test_a_description_on_several_lines_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match="one line"):
        new_plugin("weather", tmp_path, description="two\nlines")


def test_what_it_writes_is_lint_clean_and_formatted(tmp_path: Path) -> None:
    target = new_plugin("weather", tmp_path)
    for command in (["check", "."], ["format", "--check", "."]):
        done = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=target, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_template_ships_as_package_data() -> None:
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    templates = [str(path.relative_to(TEMPLATES.parent)) for path in TEMPLATES.rglob("*.tmpl")]
    assert len(templates) == len(FILES)
    for template in templates:
        assert any(fnmatch.fnmatchcase(template, p) for p in patterns["hub.core.scaffold"]), template


class Steps:
    """Runs the commands of the end-to-end test in the scratch environment, timing each."""

    def __init__(self, python: Path) -> None:
        self.python = python
        self.env = {key: value for key, value in os.environ.items() if key != "HUB_LOAD_PLUGINS"}
        self.timings: dict[str, float] = {}

    def run(self, step: str, *args: str | Path, cwd: Path) -> str:
        started = time.monotonic()
        done = subprocess.run(
            [str(self.python), *map(str, args)], cwd=cwd, env=self.env, capture_output=True, text=True, timeout=300
        )
        self.timings[step] = time.monotonic() - started
        assert done.returncode == 0, f"{step} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        return done.stdout


def scratch_environment(folder: Path) -> Path:
    """A venv whose own site-packages come first, then this environment's (with its .pth files: the editable hub)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", folder], check=True, timeout=60)
    python = folder / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], capture_output=True, text=True
    ).stdout.strip()
    outer = sysconfig.get_path("purelib")
    (Path(site) / "hub-outer-environment.pth").write_text(f"import site; site.addsitedir({outer!r})\n")
    return python


@pytest.mark.slow
async def test_a_new_plugin_installs_passes_its_own_tests_and_loads(tmp_path: Path) -> None:
    steps = Steps(scratch_environment(tmp_path / "venv"))
    steps.run("hub plugin new", "-m", "hub", "plugin", "new", "weather", cwd=tmp_path)
    target = tmp_path / "hub-weather"
    steps.run("pip install -e '.[test]'", "-m", "pip", "install", "-q", "-e", ".[test]", cwd=target)
    assert "6 passed" in steps.run("pytest", "-m", "pytest", "-p", "no:cacheprovider", cwd=target)

    listed = json.loads(steps.run("hub plugins --json", "-m", "hub", "plugins", "--json", cwd=target))
    (weather,) = [plugin for plugin in listed["loaded"] if plugin["name"] == "weather"]
    assert weather["version"] == "0.1.0" and weather["source"] == "hub-weather", weather
    assert weather["hooks"] == ["hub_config_schema", "hub_setup"] and weather["sections"] == ["weather"]

    config = tmp_path / "config.yaml"
    config.write_text(
        f"hub:\n  data_dir: {tmp_path / 'data'}\nbroker:\n  port: {free_port()}\nhttp:\n  port: 0\n"
        "weather:\n  greeting: Hi\n"
    )
    log = tmp_path / "hub-run.log"
    started = time.monotonic()
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [steps.python, "-m", "hub", "run", "-c", config], cwd=tmp_path, env=steps.env, stderr=stderr
        )
    try:
        await wait_until(
            lambda: "running with plugins" in log.read_text() or process.poll() is not None,
            timeout=120,  # the hub gives its plugins 60 s to start, after the imports; a loaded CI machine is slow
            message="hub run to be running",
        )
        assert process.poll() is None, log.read_text()
        (running,) = [line for line in log.read_text().splitlines() if "running with plugins" in line]
        assert "weather" in running.split("running with plugins: ")[1].split(", "), running
        steps.timings["hub run until running"] = time.monotonic() - started
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0, log.read_text()  # each of the two stop phases may take 30 s
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    print("\n" + "\n".join(f"{step:<24} {seconds:6.2f} s" for step, seconds in steps.timings.items()))

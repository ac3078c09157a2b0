"""The dashboard as the http plugin serves it: public shell pages, locked-down headers, versioned assets."""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import voluptuous as vol
from hub_dashboard.config import CONFIG_SCHEMA
from hub_dashboard.shell import PAGE_PATHS, STATIC_DIR, assets_version

# Every way a script can turn a string into markup or code.
MARKUP_SINKS = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|srcdoc")


async def test_every_page_is_the_public_shell_with_a_strict_policy(dashboard) -> None:
    paths = [path.replace("{node_id}", "aa:bb:cc:dd:ee:ff") for path in PAGE_PATHS]
    bodies = set()
    for path in paths:
        async with dashboard.session.get(dashboard.url + path) as response:
            assert response.status == 200, path
            assert response.content_type == "text/html"
            csp = response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Cache-Control"] == "no-cache"
            bodies.add(await response.text())
    (body,) = bodies  # one shell for every page: it carries no data
    assert '<script type="module"' in body and "<script>" not in body  # no inline script
    assert 'data-stale-after="120"' in body


async def test_assets_are_served_under_their_content_hash(dashboard) -> None:
    async with dashboard.session.get(dashboard.url + "/") as response:
        body = await response.text()
    prefix = re.search(r'src="(/static/dashboard/[0-9a-f]{12})/js/app\.js"', body).group(1)
    assert prefix.endswith(assets_version())
    for asset, kind in (
        ("js/app.js", "javascript"),
        ("js/pages/node.js", "javascript"),
        ("vendor/uPlot.iife.min.js", "javascript"),
        ("css/base.css", "text/css"),
        ("css/pages.css", "text/css"),
    ):
        async with dashboard.session.get(f"{dashboard.url}{prefix}/{asset}") as response:
            assert response.status == 200, asset
            assert kind in response.content_type, (asset, response.content_type)
    # Every module is preloaded, so a slow host serves them in one round rather than a chain of imports.
    modules = {p.relative_to(STATIC_DIR).as_posix() for p in (STATIC_DIR / "js").rglob("*.js")} - {"js/app.js"}
    assert set(re.findall(rf'rel="modulepreload" href="{prefix}/([^"]+)"', body)) == modules
    async with dashboard.session.get(f"{dashboard.url}{prefix}/../shell.html") as response:
        assert response.status == 404


def test_the_asset_hash_changes_with_any_file(tmp_path: Path) -> None:
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "a.js").write_text("export const a = 1;")
    first = assets_version(tmp_path)
    assert assets_version(tmp_path) == first
    (tmp_path / "js" / "a.js").write_text("export const a = 2;")
    assert assets_version(tmp_path) != first


async def test_data_still_needs_a_token(dashboard) -> None:
    for path in ("/api/nodes", "/api/system", "/api/auth/tokens"):
        status, body = await dashboard.call("GET", path)
        assert status == 401 and body["error"]["code"] == "missing_token", (path, body)
    status, body = await dashboard.call("GET", "/api/nodes", token="hat.not-a-token")
    assert status == 401, body


def test_scripts_never_turn_strings_into_markup() -> None:
    """The escaping rule, checked where it lives: no script of ours has an HTML or code sink."""
    scripts = sorted((STATIC_DIR / "js").rglob("*.js"))
    assert len(scripts) > 5
    offenders = [f"{p.name}: {m.group(0)}" for p in scripts for m in MARKUP_SINKS.finditer(p.read_text())]
    assert offenders == []


def test_config_section() -> None:
    assert CONFIG_SCHEMA({}) == {"stale_after": 120.0}
    assert CONFIG_SCHEMA({"stale_after": "30"}) == {"stale_after": 30.0}
    with pytest.raises(vol.Invalid):
        CONFIG_SCHEMA({"stale_after": 0})
    with pytest.raises(vol.Invalid):
        CONFIG_SCHEMA({"colour": "blue"})


def test_installed_as_a_hub_plugin() -> None:
    (entry,) = [ep for ep in entry_points(group="hub") if ep.name == "dashboard"]
    assert entry.value == "hub_dashboard.plugin"
    assert entry.dist is not None and entry.dist.name == "hub-dashboard"
    assert (STATIC_DIR / "vendor" / "uPlot.LICENSE").is_file()

"""The hooks through which plugins (the dashboard) contribute pages, API routes and static files."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from http_helpers import Api, assert_error

from hub import Manifest, current_actor
from hub.core.errors import HubError, StorageUnavailable
from hub.core.plugins.hookspecs import hookimpl
from hub.plugins.http import PRINCIPAL_KEY
from hub.web import NotFound


class WebPlugin:
    """What a dashboard-like plugin does: a public shell page, a protected API route, static files."""

    MANIFEST = Manifest(name="web", requires=("http",))

    def __init__(self, root: Path) -> None:
        self.root = root

    @hookimpl
    def hub_http_routes(self, register) -> None:
        async def page(request: web.Request) -> web.Response:
            return web.Response(text="<html>sign in</html>", content_type="text/html")

        async def whoami(request: web.Request) -> web.Response:
            return web.json_response({"user": request[PRINCIPAL_KEY].user.username, "actor": current_actor()})

        async def public_actor(request: web.Request) -> web.Response:
            return web.json_response({"actor": current_actor()})

        async def missing(request: web.Request) -> web.Response:
            raise NotFound("nothing here", code="widget_not_found")

        async def offline(request: web.Request) -> web.Response:
            raise StorageUnavailable("the database is unreachable")

        register("GET", "/", page, auth=False)
        register("GET", "/api/web/whoami", whoami)
        register("GET", "/api/web/public_actor", public_actor, auth=False)
        register("GET", "/api/web/offline", offline)
        register(
            "GET",
            "/api/web/missing",
            missing,
            doc={"summary": "always 404", "responses": {"404": {"description": "not found"}}},
        )

    @hookimpl
    def hub_http_static(self, register) -> None:
        register("/static", self.root / "public")
        register("/private", self.root / "private", auth=True)


async def test_plugin_pages_routes_and_static_files(make_api, tmp_path: Path) -> None:
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "app.js").write_text("console.log('hi')")
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "report.txt").write_text("secret")
    (tmp_path / "outside.txt").write_text("must not be served")
    api: Api = await make_api(plugins=[(WebPlugin(tmp_path), "web")])

    status, text = await api.call("GET", "/", auth=False)
    assert status == 200 and "sign in" in text
    status, body = await api.call("GET", "/api/web/whoami", auth=False)
    assert_error(status, body, 401, "missing_token")
    assert await api.call("GET", "/api/web/whoami") == (200, {"user": "owner", "actor": "owner"})
    assert await api.call("GET", "/api/web/public_actor") == (200, {"actor": None})  # public: nobody signed in
    status, body = await api.call("GET", "/api/web/missing")
    assert_error(status, body, 404, "widget_not_found")
    assert issubclass(NotFound, HubError)  # one error root across plugin boundaries
    status, body = await api.call("GET", "/api/web/offline")
    assert_error(status, body, 503, "storage_unavailable")

    status, text = await api.call("GET", "/static/app.js", auth=False)
    assert status == 200 and "console.log" in text
    status, _ = await api.call("GET", "/static/../outside.txt", auth=False)
    assert status == 404
    status, _ = await api.call("GET", "/static/%2e%2e/outside.txt", auth=False)
    assert status in (403, 404)
    status, body = await api.call("GET", "/private/report.txt", auth=False)
    assert_error(status, body, 401)
    assert await api.call("GET", "/private/report.txt") == (200, "secret")

    status, document = await api.call("GET", "/api/openapi.json")
    assert "/api/web/missing" in document["paths"] and "/api/web/whoami" not in document["paths"]
    assert api.hub.plugins.failed == {}

"""The app shell: the one HTML page every dashboard URL serves, and the headers that lock it down.

The dashboard is a single-page app of plain ES modules: ``/``, ``/nodes/…``, ``/firmware``, ``/provisioning``,
``/system``, ``/tokens``, ``/signin`` and ``/onboarding`` all answer with the
same small document, and ``static/js/app.js`` renders the page for the URL.

Assets are served under ``/static/dashboard/<hash>``, where the hash covers
every static file, so a browser can never combine a cached old module with a
new one after an upgrade; the shell itself is ``no-cache``.  The shell lists
every module as ``modulepreload`` so a Raspberry Pi serves them in one round
instead of a chain of imports.

The Content-Security-Policy allows only this origin's scripts, styles and
connections: even if some data were ever rendered as markup by mistake, an
injected ``<img onerror=…>`` or ``<script>`` could not run.
"""

from __future__ import annotations

import hashlib
import html
from pathlib import Path

from aiohttp import web

PACKAGE_DIR = Path(__file__).parent
STATIC_DIR = PACKAGE_DIR / "static"
TEMPLATE = PACKAGE_DIR / "shell.html"
ASSETS_PREFIX = "/static/dashboard"

PAGE_PATHS = ("/", "/nodes/{node_id}", "/firmware", "/provisioning", "/system", "/tokens", "/signin", "/onboarding")
"""The URLs of the app's pages (``static/js/app.js`` has the matching routes)."""

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def assets_version(directory: Path = STATIC_DIR) -> str:
    """A short hash of every file's path and bytes under ``directory`` (about 100 kB, read once per start)."""
    digest = hashlib.blake2b(digest_size=6)
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


class AppShell:
    """The rendered shell page (built once) and its handler."""

    def __init__(self, *, stale_after: float) -> None:
        self.assets_url = f"{ASSETS_PREFIX}/{assets_version()}"
        modules = sorted(p.relative_to(STATIC_DIR).as_posix() for p in (STATIC_DIR / "js").rglob("*.js"))
        preloads = "\n".join(
            f'<link rel="modulepreload" href="{html.escape(self.assets_url)}/{html.escape(module)}">'
            for module in modules
            if module != "js/app.js"
        )
        self.body = (
            TEMPLATE.read_text(encoding="utf-8")
            .replace("{{assets}}", html.escape(self.assets_url))
            .replace("{{preloads}}", preloads)
            .replace("{{stale_after}}", html.escape(f"{stale_after:g}"))
            .encode()
        )

    async def page(self, request: web.Request) -> web.Response:
        """Any page of the app: the same shell; the script reads the URL."""
        return web.Response(body=self.body, content_type="text/html", charset="utf-8", headers=SECURITY_HEADERS)

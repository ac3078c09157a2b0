"""hub-dashboard: the web dashboard of the ``hub`` IoT hub.

The plugin module is :mod:`hub_dashboard.plugin`; it contributes the pages
(one app shell, :mod:`hub_dashboard.shell`) and the static files (plain ES
modules, CSS and the vendored uPlot under ``static/``) through the http
plugin's ``hub_http_routes`` and ``hub_http_static`` hooks.  All data is
fetched by the browser from the authenticated REST and WebSocket API.
"""

__version__ = "0.1.0"
"""The distribution's version: the one place it is written (pyproject.toml reads it from here)."""

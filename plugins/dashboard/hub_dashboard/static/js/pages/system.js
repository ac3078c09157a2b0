/**
 * How the hub is doing (`GET /api/system`): message rate, rejects by reason,
 * storage latency and queue depth, broker connection, WebSocket clients,
 * plugins.  The hub samples its counters every 5 s, so the page asks again at
 * that pace, and only while it is visible.
 */
import { api, errorMessage, isSignedOut } from "../api.js";
import { h, notice, replace } from "../dom.js";
import { formatDuration, formatNumber } from "../format.js";

const REFRESH_EVERY = 5000;

export function mount(main, { setTitle }) {
  setTitle("System");
  const grid = h("div", { class: "system-grid" });
  const plugins = h("section", { class: "card wide-card" });
  const status = h("div");
  replace(main, h("div", { class: "page-head" }, h("h1", null, "System")), status, grid, plugins);
  replace(status, notice("Loading…"));
  let timer = 0;
  let alive = true;

  async function refresh() {
    clearTimeout(timer);
    try {
      render(await api("GET", "/api/system"));
      replace(status);
    } catch (err) {
      if (isSignedOut(err)) return;
      replace(status, notice(`Could not load the figures: ${errorMessage(err)}`, "error"));
    }
    if (alive && document.visibilityState === "visible") timer = setTimeout(refresh, REFRESH_EVERY);
  }

  function render(s) {
    const rejected = Object.entries(s.messages.rejected_by_reason).sort((a, b) => b[1] - a[1]);
    const batch = s.storage.batch_seconds;
    replace(
      grid,
      card("Messages", [
        big(rate(s.messages.received_per_second), "messages / s", "rate"),
        facts([
          ["Received", count(s.messages.received_total)],
          ["Rejected", count(s.messages.rejected_total)],
        ]),
      ]),
      card("Rejected by reason", [
        rejected.length
          ? h(
              "table",
              { class: "table kv" },
              h(
                "tbody",
                null,
                rejected.map(([reason, n]) =>
                  h(
                    "tr",
                    null,
                    h("th", { scope: "row" }, h("code", null, reason)),
                    h("td", { class: "num" }, count(n)),
                  ),
                ),
              ),
            )
          : notice("No message was rejected."),
      ]),
      card("Storage", [
        s.storage.loaded
          ? [
              big(ms(batch && batch.p99), "batch latency p99", "latency"),
              facts([
                ["Queue depth", count(s.storage.queue_depth)],
                ["Batch latency p50", ms(batch && batch.p50)],
                ["Batches written", count(batch && batch.count)],
                ["Rows / s", rate(s.storage.rows_per_second)],
                ["Rows stored", count(s.storage.rows_total)],
              ]),
            ]
          : notice("No storage plugin is loaded: nothing is recorded.", "warn"),
      ]),
      card("Broker", [
        h("p", null, connection(s.broker.connected)),
        facts([["URL", s.broker.url ? h("code", null, s.broker.url) : "—"]]),
      ]),
      card("Nodes", [
        big(count(s.nodes.total), "nodes", "nodes"),
        facts(Object.entries(s.nodes.by_status).map(([key, n]) => [key, count(n)])),
      ]),
      card("Hub", [
        facts([
          ["Name", s.hub.name],
          ["Version", s.hub.version],
          ["State", s.hub.state],
          ["Uptime", formatDuration(s.hub.uptime_seconds)],
          ["WebSocket clients", count(s.websocket.clients)],
          ["Slow clients dropped", count(s.websocket.slow_disconnects)],
        ]),
      ]),
    );
    const failed = Object.entries(s.plugins.failed);
    replace(
      plugins,
      h("h2", null, "Plugins"),
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          { class: "table plugins" },
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              h("th", null, "Plugin"),
              h("th", null, "Version"),
              h("th", null, "Source"),
              h("th", { class: "col-hooks" }, "Hooks"),
            ),
          ),
          h(
            "tbody",
            null,
            s.plugins.loaded.map((p) =>
              h(
                "tr",
                { dataset: { plugin: p.name } },
                h("td", null, h("strong", null, p.name)),
                h("td", { class: "mono" }, p.version || "—"),
                h("td", { class: "muted" }, p.source),
                h("td", { class: "muted small col-hooks" }, p.hooks.join(", ")),
              ),
            ),
          ),
        ),
      ),
      failed.length
        ? h(
            "div",
            { class: "callout error" },
            h("strong", null, "Failed plugins"),
            h(
              "ul",
              null,
              failed.map(([name, why]) => h("li", null, h("code", null, name), ": ", String(why))),
            ),
          )
        : null,
    );
  }

  const onVisibility = () => {
    if (document.visibilityState === "visible") refresh();
  };
  document.addEventListener("visibilitychange", onVisibility);
  refresh();
  return () => {
    alive = false;
    clearTimeout(timer);
    document.removeEventListener("visibilitychange", onVisibility);
  };
}

function card(title, children) {
  return h(
    "section",
    { class: "card", dataset: { card: title.toLowerCase().replace(/\W+/g, "-") } },
    h("h2", null, title),
    children,
  );
}

function big(value, label, name) {
  return h(
    "div",
    { class: "big", dataset: { figure: name } },
    h("span", { class: "big-value" }, value),
    h("span", { class: "big-label muted" }, label),
  );
}

function facts(pairs) {
  return h(
    "dl",
    { class: "facts compact" },
    pairs.map(([k, v]) => h("div", null, h("dt", null, k), h("dd", null, v))),
  );
}

function count(value) {
  return value === null || value === undefined ? "—" : formatNumber(Math.round(value));
}

function rate(value) {
  return value === null || value === undefined ? "—" : formatNumber(value);
}

function ms(seconds) {
  return seconds === null || seconds === undefined ? "—" : `${formatNumber(seconds * 1000)} ms`;
}

function connection(connected) {
  if (connected === null || connected === undefined)
    return h("span", { class: "badge status-unknown" }, h("span", { class: "dot" }), "No MQTT transport");
  return connected
    ? h("span", { class: "badge status-online" }, h("span", { class: "dot" }), "Connected")
    : h("span", { class: "badge status-offline" }, h("span", { class: "dot" }), "Disconnected");
}

/**
 * How the hub is doing (`GET /api/system`): the last hour of message rate,
 * rejects, stored rows and batch latency as charts; rejects by reason in words
 * with the last example; storage, broker, WebSocket clients, plugins.  The hub
 * samples its counters every 5 s, so the page asks again at that pace (the
 * charts extend), and only while it is visible.  Below: the sign-in bans
 * (see ../bans.js), which an admin can lift.
 */
import { api, errorMessage, isSignedOut } from "../api.js";
import { BansCard } from "../bans.js";
import { h, notice, replace, STATUS_LABELS, statusBadge } from "../dom.js";
import { formatAgo, formatDuration, formatNumber } from "../format.js";
import { RateChart } from "../rate-chart.js";

const REFRESH_EVERY = 5000;

/** What each reject reason means, for people (the code stays visible for searching logs). */
const REASONS = {
  bad_topic: "Unknown topic",
  bad_mac: "No MAC address in the topic",
  too_large: "Message too large (over 64 KiB)",
  not_json: "Not valid JSON",
  not_object: "Telemetry not a JSON object",
  too_deep: "Nested too deeply",
  too_many_keys: "Too many keys (over 128)",
  bad_key: "Badly named key (the key was skipped)",
  mac_mismatch: "mac_address differs from the topic",
  bad_status: "Status neither online nor offline",
  bad_ack: "Malformed command answer",
  retained_ack: "Command answer sent retained",
};

const CHARTS = [
  ["received_per_second", "Messages / s", (v) => formatNumber(v)],
  ["rejected_per_second", "Rejects / s", (v) => formatNumber(v)],
  ["rows_per_second", "Stored rows / s", (v) => formatNumber(v)],
  ["batch_seconds", "Batch latency", (v) => `${formatNumber(v * 1000)} ms`],
];

export function mount(main, { setTitle }) {
  setTitle("System");
  const grid = h("div", { class: "system-grid" });
  const plugins = h("section", { class: "card wide-card" });
  const bans = new BansCard();
  const status = h("div");
  const collecting = notice("The hub samples every 5 s: the charts fill in from the first minute.");
  const rates = CHARTS.map(([key, label, format]) => {
    const root = h("div", { class: "rate-chart", dataset: { series: key } });
    const card = h("div", { class: "card chart-card" }, h("h3", null, label), root);
    return { key, card, chart: new RateChart(root, { label, format }) };
  });
  replace(
    main,
    h("div", { class: "page-head" }, h("h1", null, "System")),
    status,
    h(
      "section",
      { "aria-labelledby": "last-hour" },
      h("h2", { id: "last-hour" }, "Last hour"),
      collecting,
      h("div", { class: "rate-charts" }, rates.map((r) => r.card)),
    ),
    grid,
    plugins,
    bans.element,
  );
  replace(status, notice("Loading…"));
  let timer = 0;
  let alive = true;

  async function refresh() {
    clearTimeout(timer);
    try {
      render(await api("GET", "/api/system"));
      replace(status);
      await bans.load();
    } catch (err) {
      if (isSignedOut(err)) return;
      replace(status, notice(`Could not load the figures: ${errorMessage(err)}`, "error"));
    }
    if (alive && document.visibilityState === "visible") timer = setTimeout(refresh, REFRESH_EVERY);
  }

  function render(s) {
    for (const { key, chart } of rates) chart.set(s.series.t, s.series[key]);
    collecting.hidden = s.series.t.length > 1;
    const examples = s.messages.rejected_examples || {};
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
              { class: "table reasons" },
              h(
                "tbody",
                null,
                rejected.map(([reason, n]) =>
                  h(
                    "tr",
                    { dataset: { reason } },
                    h(
                      "th",
                      { scope: "row" },
                      h("span", { class: "reason" }, REASONS[reason] ?? reason.replaceAll("_", " ")),
                      " ",
                      h("code", { class: "small" }, reason),
                      example(examples[reason]),
                    ),
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
        facts(Object.entries(s.nodes.by_status).map(([key, n]) => [STATUS_LABELS[key] ?? key, count(n)])),
      ]),
      card("Hub", [
        facts([
          ["Name", s.hub.name],
          ["Version", s.hub.version],
          ["State", s.hub.state.charAt(0).toUpperCase() + s.hub.state.slice(1)],
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
    for (const { chart } of rates) chart.destroy();
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
  if (connected === null || connected === undefined) return statusBadge("unknown", "No MQTT transport");
  return connected ? statusBadge("online", "Connected") : statusBadge("offline", "Disconnected");
}

/** The last rejected message of a reason: what it said and when. */
function example(last) {
  if (!last) return null;
  const what = last.detail ? `${last.detail} on ${last.topic}` : last.topic;
  return h("div", { class: "muted small reject-example" }, `Last: ${what}, ${formatAgo(last.ts)}`);
}

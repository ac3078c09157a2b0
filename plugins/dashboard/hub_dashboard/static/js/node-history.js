/**
 * The "History" section of a node's page: a range picker and one chart per numeric entity.
 *
 * Histories come from the REST history endpoint for the chosen range, with as
 * many buckets as divide it evenly (15 s, 5 min, 30 min, 2 h), aligned to the
 * bucket width so reloads draw the same buckets; live readings are folded in
 * by the charts.  The chosen range is remembered in localStorage.
 */
import { api, errorMessage, isSignedOut } from "./api.js";
import { HistoryChart } from "./chart.js";
import { h, notice, replace } from "./dom.js";
import { serverNow } from "./format.js";
import { isNumeric } from "./nodes.js";

export const RANGES = {
  "1h": { label: "1 h", seconds: 3600, points: 240 },
  "24h": { label: "24 h", seconds: 86400, points: 288 },
  "7d": { label: "7 d", seconds: 7 * 86400, points: 336 },
  "30d": { label: "30 d", seconds: 30 * 86400, points: 360 },
};
const RANGE_KEY = "hub.range";

export class NodeHistory {
  constructor(nodeId) {
    this.nodeId = nodeId;
    this.range = RANGES[localStorage.getItem(RANGE_KEY)] ? localStorage.getItem(RANGE_KEY) : "24h";
    this.charts = new Map();
    this.abort = null;
    this.grid = h("div", { class: "charts" });
    this.notice = h("div");
    this.buttons = Object.entries(RANGES).map(([key, spec]) =>
      h(
        "button",
        {
          type: "button",
          class: "segment",
          dataset: { range: key },
          "aria-pressed": String(key === this.range),
          onclick: () => this.setRange(key),
        },
        spec.label,
      ),
    );
    this.element = h(
      "section",
      null,
      h(
        "div",
        { class: "section-head" },
        h("h2", null, "History"),
        h("div", { class: "segmented", role: "group", "aria-label": "Time range" }, this.buttons),
      ),
      this.notice,
      this.grid,
    );
  }

  /** Add a chart for every numeric entity of `node` that has none yet; true if one was added. */
  sync(node) {
    let added = false;
    for (const entity of node.entities.values()) {
      if (!isNumeric(entity) || this.charts.has(entity.key)) continue;
      const plot = h("div", { class: "chart", dataset: { key: entity.key } });
      const empty = notice("No data in this range.");
      empty.hidden = true;
      const unit = showUnit(entity) ? h("span", { class: "muted" }, ` (${entity.unit})`) : null;
      this.grid.append(
        h("div", { class: "card chart-card" }, h("h3", null, entity.name || entity.key, unit), plot, empty),
      );
      const chart = new HistoryChart(plot, { unit: entity.unit, deviceClass: entity.device_class });
      this.charts.set(entity.key, { chart, empty });
      added = true;
    }
    return added;
  }

  /** (Re)load every chart's history for the current range. */
  async load() {
    if (this.abort) this.abort.abort();
    const abort = new AbortController();
    this.abort = abort;
    const spec = RANGES[this.range];
    const width = spec.seconds / spec.points;
    const end = Math.ceil(serverNow() / width) * width;
    const query = `start=${end - spec.seconds}&end=${end}&points=${spec.points}`;
    replace(this.notice);
    await Promise.all(
      [...this.charts].map(async ([key, { chart, empty }]) => {
        const path = `/api/nodes/${encodeURIComponent(this.nodeId)}/history/${encodeURIComponent(key)}?${query}`;
        try {
          const history = await api("GET", path, { signal: abort.signal });
          await chart.setHistory(history);
          empty.hidden = history.buckets.length > 0;
        } catch (err) {
          if (err.name === "AbortError" || isSignedOut(err)) return;
          replace(this.notice, notice(errorMessage(err), "error"));
        }
      }),
    );
  }

  /** Readings of one message (`state_reported`): extend the charts. */
  addReadings(ts, states) {
    for (const [key, value] of Object.entries(states)) {
      const entry = this.charts.get(key);
      if (entry) {
        entry.chart.addReading(ts, value);
        entry.empty.hidden = true;
      }
    }
  }

  setRange(key) {
    this.range = key;
    localStorage.setItem(RANGE_KEY, key);
    for (const button of this.buttons) button.setAttribute("aria-pressed", String(button.dataset.range === key));
    this.load();
  }

  destroy() {
    if (this.abort) this.abort.abort();
    for (const { chart } of this.charts.values()) chart.destroy();
  }
}

/** Whether a chart's title names the unit (bytes and durations carry theirs on the axis: `176 KiB`, `3 h`). */
function showUnit(entity) {
  return Boolean(entity.unit) && entity.unit !== "B" && entity.device_class !== "duration";
}

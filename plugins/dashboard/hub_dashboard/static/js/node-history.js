/**
 * The "History" section of a node's page: a range picker and one chart per numeric entity.
 *
 * Histories come from the REST history endpoint for the chosen range, with as
 * many buckets as divide it evenly (15 s, 5 min, 30 min, 2 h), aligned to the
 * bucket width so reloads draw the same buckets; live readings are folded in
 * by the charts.  The chosen range is remembered in localStorage.  When the data
 * is much younger than the range (a node that started an hour ago, shown over
 * 30 days, would be one dot at the right edge), the charts show the smallest
 * range that holds all of it, and say so.
 */
import { api, errorMessage, isSignedOut } from "./api.js";
import { HistoryChart } from "./chart.js";
import { h, notice, replace } from "./dom.js";
import { formatDuration, serverNow } from "./format.js";
import { displayStatus, isNumeric } from "./nodes.js";
import { StatusTimeline } from "./status-timeline.js";

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
    this.timeline = new StatusTimeline(nodeId);
    this.node = null;
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
      this.timeline.element,
      this.grid,
    );
  }

  /** Add a chart for every numeric entity of `node` that has none yet; true if one was added. */
  sync(node) {
    this.node = node;
    let added = false;
    for (const entity of node.entities.values()) {
      if (!isNumeric(entity) || this.charts.has(entity.key)) continue;
      const plot = h("div", { class: "chart", dataset: { key: entity.key } });
      const empty = notice("No data in this range.");
      empty.hidden = true;
      const unit = unitLabel(entity) ? h("span", { class: "muted" }, ` (${unitLabel(entity)})`) : null;
      this.grid.append(
        h("div", { class: "card chart-card" }, h("h3", null, entity.name || entity.key, unit), plot, empty),
      );
      const chart = new HistoryChart(plot, { unit: entity.unit, deviceClass: entity.device_class });
      this.charts.set(entity.key, { chart, empty });
      added = true;
    }
    return added;
  }

  /** (Re)load every chart's history for the current range (or a smaller one that holds all the data). */
  async load() {
    if (this.abort) this.abort.abort();
    const abort = new AbortController();
    this.abort = abort;
    replace(this.notice);
    const chosen = RANGES[this.range];
    const histories = await this.fetch(chosen, abort);
    if (abort.signal.aborted) return;
    const end = Math.max(...histories.map((history) => history?.end ?? 0));
    const first = Math.min(...histories.map((history) => history?.buckets[0]?.t ?? Infinity));
    if (Number.isFinite(first) && end - first < chosen.seconds / 2) {
      const fitted = fit(end - first);
      const shown = await this.fetch(fitted, abort);
      if (abort.signal.aborted) return;
      replace(this.notice, notice(`Showing all ${formatDuration(end - first)} of data (younger than ${chosen.label}).`));
      await this.show(shown);
    } else {
      await this.show(histories);
    }
  }

  /** Every chart's history over `spec` (null for one that failed: the notice says why). */
  async fetch(spec, abort) {
    const width = spec.seconds / spec.points;
    const end = Math.ceil(serverNow() / width) * width;
    const query = `start=${end - spec.seconds}&end=${end}&points=${spec.points}`;
    return Promise.all(
      [...this.charts.keys()].map(async (key) => {
        const path = `/api/nodes/${encodeURIComponent(this.nodeId)}/history/${encodeURIComponent(key)}?${query}`;
        try {
          return await api("GET", path, { signal: abort.signal });
        } catch (err) {
          if (err.name !== "AbortError" && !isSignedOut(err)) replace(this.notice, notice(errorMessage(err), "error"));
          return null;
        }
      }),
    );
  }

  async show(histories) {
    const shown = histories.find(Boolean);
    if (shown && this.node) this.timeline.load(shown.start, shown.end, displayStatus(this.node));
    await Promise.all(
      [...this.charts.values()].map(async ({ chart, empty }, i) => {
        if (!histories[i]) return;
        await chart.setHistory(histories[i]);
        empty.hidden = histories[i].buckets.length > 0;
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

const WIDTHS = [15, 60, 300, 1800, 7200];
const MAX_FIT_POINTS = 360;

/** A range just longer than `age` seconds, in buckets of a width that keeps it under 360 points. */
function fit(age) {
  const want = Math.max(age * 1.1, 300);
  const width = WIDTHS.find((w) => want / w <= MAX_FIT_POINTS) ?? WIDTHS.at(-1);
  const points = Math.ceil(want / width);
  return { seconds: points * width, points };
}

/** The unit a chart's title names: bytes and durations in words (their axis scales: `176 KiB`, `3 h`). */
function unitLabel(entity) {
  if (entity.unit === "B") return "bytes";
  if (entity.device_class === "duration") return "duration";
  return entity.unit || "";
}

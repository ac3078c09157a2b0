/**
 * Time-series charts of one entity (uPlot): the average as a line inside a min–max band.
 *
 * The history endpoint answers buckets (min/avg/max/count per `bucket_seconds`);
 * live readings from WebSocket events are folded into the same buckets, so a
 * chart that has been open for an hour looks exactly like one just loaded.
 * A silence much longer than the node's usual rhythm (it was offline) becomes a
 * gap, not a straight line; a node that reports every minute on a chart of
 * 15-second buckets is still drawn as a line.
 *
 * uPlot (vendor/, MIT) is loaded on the first chart only, so the sign-in and
 * fleet pages never download it.  Colours come from CSS custom properties and
 * charts are redrawn when the theme changes (`hub:theme`, from theme.js).
 */
import { BYTE_STEPS, DURATION_STEPS, formatDateTime, formatValue, tickLabels } from "./format.js";

const HEIGHT = 220;
let uPlotLoading = null;
const liveCharts = new Set();

export function loadUPlot() {
  if (!uPlotLoading) {
    uPlotLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = new URL("../vendor/uPlot.iife.min.js", import.meta.url).href;
      script.onload = () => resolve(window.uPlot);
      script.onerror = () => {
        uPlotLoading = null;
        reject(new Error("could not load the chart library"));
      };
      document.head.append(script);
    });
  }
  return uPlotLoading;
}

/** Redraw every open chart in the current theme's colours (the theme or the system's preference changed). */
export function recolorCharts() {
  for (const chart of liveCharts) chart.rebuild();
}
document.addEventListener("hub:theme", recolorCharts);

/**
 * uPlot hook: when the cursor is not on the chart, the legend shows the latest values instead of "—".
 * `series` is the index of the series whose last non-null value picks the point.
 */
export function latestLegend(series) {
  return (u) => {
    if (u.legend.idx !== null && u.legend.idx !== undefined) return;
    const values = u.data[series] || [];
    let i = values.length - 1;
    while (i >= 0 && (values[i] === null || values[i] === undefined)) i -= 1;
    if (i >= 0) u.setLegend({ idx: i }, false);
  };
}

export function colors(el) {
  const style = getComputedStyle(el);
  const get = (name) => style.getPropertyValue(name).trim();
  return {
    line: get("--chart-line"),
    band: get("--chart-band"),
    edge: get("--chart-edge"),
    grid: get("--grid"),
    axis: get("--muted"),
  };
}

/**
 * How far apart two buckets with data may be before the line breaks: three times the usual spacing
 * (the median), and never less than one empty bucket.
 */
function gapThreshold(times, width) {
  const steps = [];
  for (let i = 1; i < times.length; i += 1) steps.push(times[i] - times[i - 1]);
  if (!steps.length) return Infinity;
  steps.sort((a, b) => a - b);
  return Math.max(width * 1.5, steps[Math.floor(steps.length / 2)] * 3);
}

/** Room for the longest y-axis label (uPlot draws 12 px labels; about 7 px a character). */
export function axisWidth(u, values) {
  if (!values || !values.length) return 40;
  return Math.ceil(Math.max(...values.map((v) => String(v).length)) * 7 + 20);
}

export class HistoryChart {
  /**
   * @param {HTMLElement} root where the chart is drawn; `root.chart` points back here (tests read it)
   * @param {{unit: string|null, deviceClass: string|null}} entity
   */
  constructor(root, { unit, deviceClass }) {
    this.root = root;
    this.unit = unit;
    this.deviceClass = deviceClass;
    this.plot = null;
    this.start = 0;
    this.end = 0;
    this.width = 1;
    this.data = [[], [], [], []];
    this.counts = [];
    this.gapAfter = Infinity;
    root.chart = this;
    this.resize = new ResizeObserver(() => {
      if (this.plot && this.root.clientWidth) this.plot.setSize({ width: this.root.clientWidth, height: HEIGHT });
    });
    this.resize.observe(root);
    liveCharts.add(this);
  }

  /** Number of buckets with data on the chart. */
  get pointCount() {
    return this.data[2].filter((value) => value !== null).length;
  }

  /** Show a history answer (`{start, end, bucket_seconds, buckets}`). */
  async setHistory(history) {
    this.start = history.start;
    this.end = history.end;
    this.width = history.bucket_seconds;
    this.data = [[], [], [], []];
    this.counts = [];
    this.gapAfter = gapThreshold(
      history.buckets.map((bucket) => bucket.t),
      this.width,
    );
    for (const bucket of history.buckets) this.push(bucket.t, bucket.min, bucket.avg, bucket.max, bucket.count);
    await this.draw();
  }

  /** Fold a live reading into its bucket (and slide the window so `ts` is in it). */
  addReading(ts, value) {
    if (typeof value !== "number" || !this.width || ts < this.start) return;
    const t = this.start + Math.floor((ts - this.start) / this.width) * this.width;
    const xs = this.data[0];
    const last = xs.length - 1;
    if (last >= 0 && xs[last] === t && this.data[2][last] !== null) {
      const count = this.counts[last];
      this.data[1][last] = Math.min(this.data[1][last], value);
      this.data[3][last] = Math.max(this.data[3][last], value);
      this.data[2][last] = (this.data[2][last] * count + value) / (count + 1);
      this.counts[last] = count + 1;
    } else if (last < 0 || t > xs[last]) {
      const recent = [];
      for (let i = Math.max(0, xs.length - 32); i < xs.length; i += 1) if (this.data[2][i] !== null) recent.push(xs[i]);
      recent.push(t);
      this.gapAfter = gapThreshold(recent, this.width);
      this.push(t, value, value, value, 1);
    } else {
      return; // older than what is shown: the next reload has it
    }
    if (t + this.width > this.end) {
      const shift = t + this.width - this.end;
      this.start += shift;
      this.end += shift;
      while (xs.length && xs[0] < this.start) {
        for (const series of this.data) series.shift();
        this.counts.shift();
      }
    }
    if (this.plot) {
      this.plot.setData(this.data, false);
      this.plot.setScale("x", { min: this.start, max: this.end });
      if (!(this.plot.cursor.left >= 0)) this.plot.setLegend({ idx: null }); // not hovering: the newest values
    }
  }

  push(t, min, avg, max, count) {
    const xs = this.data[0];
    const last = xs.length - 1;
    if (last >= 0 && this.data[2][last] !== null && t - xs[last] > this.gapAfter) {
      this.data[0].push(xs[last] + this.width); // a gap: uPlot breaks the line at null
      this.data[1].push(null);
      this.data[2].push(null);
      this.data[3].push(null);
      this.counts.push(0);
    }
    this.data[0].push(t);
    this.data[1].push(min);
    this.data[2].push(avg);
    this.data[3].push(max);
    this.counts.push(count);
  }

  async draw() {
    const uPlot = await loadUPlot();
    if (!liveCharts.has(this)) return;
    if (this.plot) {
      this.plot.setData(this.data, false);
      this.plot.setScale("x", { min: this.start, max: this.end });
      if (!(this.plot.cursor.left >= 0)) this.plot.setLegend({ idx: null });
      return;
    }
    const c = colors(this.root);
    const format = (u, value) =>
      value === null || value === undefined ? "—" : formatValue(value, this.unit, this.deviceClass);
    const edge = { stroke: c.edge, width: 1, points: { show: false }, value: format };
    const axis = { stroke: c.axis, grid: { stroke: c.grid, width: 1 }, ticks: { stroke: c.grid, width: 1 } };
    this.plot = new uPlot(
      {
        width: this.root.clientWidth || 600,
        height: HEIGHT,
        scales: { x: { time: true, range: () => [this.start, this.end] } },
        series: [
          { value: (u, ts) => (ts === null ? "—" : formatDateTime(ts)) },
          { label: "min", ...edge },
          { label: "avg", stroke: c.line, width: 2, value: format, points: { size: 4, fill: c.line } },
          { label: "max", ...edge },
        ],
        bands: [{ series: [3, 1], fill: c.band }],
        axes: [
          axis,
          {
            ...axis,
            ...this.steps(),
            size: axisWidth,
            values: (u, splits) => tickLabels(splits, this.unit, this.deviceClass),
          },
        ],
        cursor: { points: { size: 6 } },
        legend: { live: true },
        hooks: { setLegend: [latestLegend(2)] },
      },
      this.data,
      this.root,
    );
  }

  /** The y-axis tick spacings (`incrs`) that suit bytes and durations; uPlot's decimal ones otherwise. */
  steps() {
    if (this.unit === "B") return { incrs: BYTE_STEPS };
    return this.deviceClass === "duration" && this.unit === "s" ? { incrs: DURATION_STEPS } : {};
  }

  /** Redraw from scratch (new colours). */
  rebuild() {
    if (this.plot) {
      this.plot.destroy();
      this.plot = null;
      this.draw();
    }
  }

  destroy() {
    liveCharts.delete(this);
    this.resize.disconnect();
    if (this.plot) this.plot.destroy();
    this.plot = null;
    delete this.root.chart;
  }
}

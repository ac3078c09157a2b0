/**
 * A small live line chart of one figure over the last hour (the system page): the hub's
 * 5-second samples from `GET /api/system` (`series`), redrawn whenever the page asks again.
 * The legend shows the newest value unless the cursor is on the chart.
 */
import { axisWidth, colors, latestLegend, loadUPlot } from "./chart.js";
import { formatDateTime } from "./format.js";

const HEIGHT = 140;
const charts = new Set();

document.addEventListener("hub:theme", () => {
  for (const chart of charts) chart.rebuild();
});

export class RateChart {
  /**
   * @param {HTMLElement} root
   * @param {{label: string, format: (v: number) => string}} spec
   */
  constructor(root, { label, format }) {
    this.root = root;
    this.label = label;
    this.format = format;
    this.data = [[], []];
    this.plot = null;
    root.chart = this;
    this.resize = new ResizeObserver(() => {
      if (this.plot && this.root.clientWidth) this.plot.setSize({ width: this.root.clientWidth, height: HEIGHT });
    });
    this.resize.observe(root);
    charts.add(this);
  }

  /** Number of samples with a value. */
  get pointCount() {
    return this.data[1].filter((v) => v !== null).length;
  }

  /** Show `times` (epoch s) and `values` (nulls are gaps). */
  async set(times, values) {
    this.data = [times, values];
    const uPlot = await loadUPlot();
    if (!charts.has(this)) return;
    if (this.plot) {
      this.plot.setData(this.data);
      if (!(this.plot.cursor.left >= 0)) this.plot.setLegend({ idx: null });
      return;
    }
    const c = colors(this.root);
    const axis = { stroke: c.axis, grid: { stroke: c.grid, width: 1 }, ticks: { stroke: c.grid, width: 1 } };
    const format = (u, v) => (v === null || v === undefined ? "—" : this.format(v));
    this.plot = new uPlot(
      {
        width: this.root.clientWidth || 300,
        height: HEIGHT,
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] } },
        series: [
          { value: (u, ts) => (ts === null ? "—" : formatDateTime(ts)) },
          { label: this.label, stroke: c.line, width: 2, fill: c.band, value: format, points: { show: false } },
        ],
        axes: [
          axis,
          { ...axis, size: axisWidth, values: (u, splits) => splits.map((v) => this.format(v)) },
        ],
        cursor: { points: { size: 6 } },
        legend: { live: true },
        hooks: { setLegend: [latestLegend(1)] },
      },
      this.data,
      this.root,
    );
  }

  rebuild() {
    if (this.plot) {
      this.plot.destroy();
      this.plot = null;
      this.set(...this.data);
    }
  }

  destroy() {
    charts.delete(this);
    this.resize.disconnect();
    if (this.plot) this.plot.destroy();
    this.plot = null;
    delete this.root.chart;
  }
}

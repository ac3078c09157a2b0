/**
 * A long table body that only has rows for what is on screen (a virtualised list).
 *
 * The fleet may hold 10,000 nodes: a row each would be 200,000 DOM nodes, seconds to draw, and a
 * table that re-lays itself out on every live update.  Here the body holds the rows in and near
 * the window (plus {@link OVERSCAN} on each side) between two spacer rows whose heights stand for
 * the rows above and below, so the page scrolls as if every row were there.  Row heights are
 * measured as rows are drawn (their running average sizes the spacers), so rows need not be of one
 * height; the window is recomputed on scroll and resize, at most once per animation frame.
 */
const OVERSCAN = 8;
const FIRST_GUESS = 56;

export class VirtualRows {
  /**
   * @param {HTMLTableSectionElement} tbody
   * @param {{columns: number, create: (item: any) => {tr: HTMLElement}, update: (row: any, item: any) => void,
   *   key: (item: any) => string}} spec
   */
  constructor(tbody, { columns, create, update, key }) {
    this.tbody = tbody;
    this.create = create;
    this.update = update;
    this.key = key;
    this.items = [];
    this.rows = new Map();
    this.shown = [];
    this.heights = { sum: 0, count: 0 };
    this.top = spacer(columns);
    this.bottom = spacer(columns);
    this.frame = 0;
    this.onViewport = () => {
      if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
    };
    window.addEventListener("scroll", this.onViewport, { passive: true });
    window.addEventListener("resize", this.onViewport);
  }

  /** Show `items` in this order (drawing only the ones near the window). */
  setItems(items) {
    this.items = items;
    this.index = new Map(items.map((item, i) => [this.key(item), i]));
    this.draw();
  }

  /** Redraw the rows of these keys if they are drawn (live updates of a few rows). */
  refresh(keys) {
    for (const key of keys) {
      const row = this.rows.get(key);
      if (row) this.update(row, this.items[this.index.get(key)]);
    }
  }

  /** The drawn rows (every drawn row, e.g. for the 1-s tick). */
  get drawnKeys() {
    return this.rows.keys();
  }

  rowHeight() {
    return this.heights.count ? this.heights.sum / this.heights.count : FIRST_GUESS;
  }

  draw() {
    this.frame = 0;
    const height = this.rowHeight();
    const offset = this.tbody.getBoundingClientRect().top; // the body's top relative to the window
    const first = Math.max(0, Math.floor(-offset / height) - OVERSCAN);
    const last = Math.min(this.items.length, Math.ceil((window.innerHeight - offset) / height) + OVERSCAN);
    const wanted = this.items.slice(first, Math.max(first, last));
    const keep = new Set(wanted.map(this.key));
    for (const key of this.rows.keys()) if (!keep.has(key)) this.rows.delete(key);
    const order = wanted.map((item) => {
      const key = this.key(item);
      let row = this.rows.get(key);
      if (!row) {
        row = this.create(item);
        this.rows.set(key, row);
      }
      this.update(row, item);
      return row.tr;
    });
    const fresh = order.some((tr) => !tr.isConnected);
    if (order.length !== this.shown.length || order.some((tr, i) => tr !== this.shown[i])) {
      const parts = [];
      if (first > 0) parts.push(this.top);
      parts.push(...order);
      if (last < this.items.length) parts.push(this.bottom);
      this.tbody.replaceChildren(...parts);
      this.shown = order;
    }
    if (fresh) this.measure(order);
    this.top.firstChild.style.height = `${Math.round(first * this.rowHeight())}px`;
    this.bottom.firstChild.style.height = `${Math.round((this.items.length - last) * this.rowHeight())}px`;
  }

  measure(order) {
    for (const tr of order.slice(0, 50)) {
      const size = tr.offsetHeight;
      if (size > 0 && this.heights.count < 10000) {
        this.heights.sum += size;
        this.heights.count += 1;
      }
    }
  }

  destroy() {
    cancelAnimationFrame(this.frame);
    window.removeEventListener("scroll", this.onViewport);
    window.removeEventListener("resize", this.onViewport);
  }
}

function spacer(columns) {
  const tr = document.createElement("tr");
  tr.className = "spacer";
  tr.setAttribute("aria-hidden", "true");
  const td = document.createElement("td");
  td.colSpan = columns;
  tr.append(td);
  return tr;
}

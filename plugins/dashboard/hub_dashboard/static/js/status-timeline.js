/**
 * A node's status over the charts' range as one strip: online, offline and unknown
 * stretches from the stored status history (`GET /api/nodes/{id}/status_history`),
 * with a line of text that says the same (share online, number of outages), so the
 * strip's colours are never the only way to read it.
 */
import { api, isSignedOut } from "./api.js";
import { h, replace, STATUS_LABELS } from "./dom.js";
import { formatDateTime, formatDuration, serverNow } from "./format.js";

const LIMIT = 1000;

export class StatusTimeline {
  constructor(nodeId) {
    this.nodeId = nodeId;
    this.strip = h("div", { class: "timeline-strip", role: "img" });
    this.summary = h("p", { class: "timeline-summary muted small" });
    this.element = h(
      "div",
      { class: "card timeline" },
      h("h3", null, "Status over this range"),
      this.strip,
      this.summary,
    );
    this.range = null;
    this.history = null;
    this.current = "unknown";
  }

  /** Draw the range [start, end] (epoch s); `status` is the node's status now. */
  async load(start, end, status) {
    this.range = [start, end];
    this.current = status;
    const query = `start=${start}&end=${end}&limit=${LIMIT}`;
    let history;
    try {
      ({ history } = await api("GET", `/api/nodes/${encodeURIComponent(this.nodeId)}/status_history?${query}`));
    } catch (err) {
      if (!isSignedOut(err)) this.summary.textContent = "Could not load the status history.";
      return;
    }
    this.history = history;
    this.draw(start, end, history);
  }

  /**
   * A status change arrived (`node_status_changed`): drawn at once from the event, since storage
   * may not have written it yet.
   */
  addChange(change, status) {
    this.current = status;
    if (!this.range || !this.history) return;
    this.history = [change, ...this.history];
    this.draw(this.range[0], Math.max(this.range[1], serverNow()), this.history);
  }

  draw(start, end, history) {
    const changes = [...history].reverse(); // oldest first
    const now = Math.min(end, serverNow());
    let status = changes.length ? changes[0].old || "unknown" : this.current;
    let from = start;
    const spans = [];
    for (const change of changes) {
      const at = Math.max(start, Math.min(change.ts, now));
      if (at > from) spans.push({ status, from, to: at });
      status = change.new;
      from = at;
    }
    if (now > from) spans.push({ status, from, to: now });
    const total = end - start;
    replace(
      this.strip,
      spans.map((span) => {
        const segment = h("span", {
          class: `timeline-span status-${normal(span.status)}`,
          title: `${STATUS_LABELS[normal(span.status)]} ${formatDateTime(span.from)} – ${formatDateTime(span.to)}`,
        });
        segment.style.width = `${(100 * (span.to - span.from)) / total}%`;
        return segment;
      }),
    );
    const online = spans.filter((s) => s.status === "online").reduce((sum, s) => sum + (s.to - s.from), 0);
    const known = now - start;
    const outages = changes.filter((c) => c.new === "offline").length;
    const share = known > 0 ? Math.round((100 * online) / known) : 0;
    const text =
      `Online ${share} % of the last ${formatDuration(known)}; ` +
      (outages === 1 ? "went offline once." : `went offline ${outages} times.`);
    this.summary.textContent = text;
    this.strip.setAttribute("aria-label", text);
  }
}

function normal(status) {
  return status === "online" || status === "offline" ? status : "unknown";
}

/**
 * The "Commands" section of a node's page: a button per action, the live status of
 * every command sent, and the node's command history (paged).
 *
 * Actions come from `GET /api/actions`: those without params get a button (REBOOT
 * asks first: a reboot interrupts whatever the node is doing); those with params
 * are sent from a small form with the params as JSON.  Each command is followed
 * by the `command_updated` events of the WebSocket (queued → sent → delivered →
 * acknowledged → succeeded / failed with the node's reason / expired / cancelled),
 * and history is reloaded after a reconnect, since events missed meanwhile are
 * not replayed.
 */
import { api, errorMessage, isSignedOut } from "./api.js";
import { h, notice, replace, setText } from "./dom.js";
import { formatAgo, formatDateTime } from "./format.js";

const PAGE = 20;
const PENDING = new Set(["queued", "sent", "delivered", "acknowledged"]);
export const COMMAND_LABELS = {
  queued: "Queued",
  sent: "Sent",
  delivered: "Delivered",
  acknowledged: "Acknowledged",
  succeeded: "Succeeded",
  failed: "Failed",
  expired: "Expired",
  cancelled: "Cancelled",
};
const CONFIRM = { REBOOT: "Reboot this node? It goes offline for a few seconds." };

/** `STATUS_REQUEST` → `Status request`. */
export function actionLabel(name) {
  const words = name.toLowerCase().replaceAll("_", " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** A command's status as a badge: an icon (CSS: a spinner while pending, ✓ ✕ …) and the word. */
export function commandBadge(status) {
  const pending = PENDING.has(status);
  return h(
    "span",
    { class: `badge cmd-${status}${pending ? " cmd-pending" : ""}` },
    h("span", { class: "cmd-icon", "aria-hidden": "true" }),
    h("span", { class: "cmd-label" }, COMMAND_LABELS[status] ?? status),
  );
}

export class NodeCommands {
  /**
   * @param {string} nodeId
   * @param {import("./socket.js").HubSocket} socket
   */
  constructor(nodeId, socket) {
    this.nodeId = nodeId;
    this.commands = new Map();
    this.rows = new Map();
    this.oldest = null;
    this.buttons = h("div", { class: "command-buttons" });
    this.confirm = h("div", { class: "command-confirm", hidden: true });
    this.error = h("p", { class: "form-error", role: "alert", hidden: true });
    this.latest = h("p", { class: "command-latest", role: "status", "aria-live": "polite" });
    this.form = h("form", { class: "command-form", hidden: true });
    this.tbody = h("tbody");
    this.historyNote = h("div");
    this.more = h(
      "button",
      { type: "button", class: "button subtle", hidden: true, onclick: () => this.loadPage(this.oldest) },
      "Show older commands",
    );
    this.table = h(
      "table",
      { class: "table commands cards", hidden: true },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h("th", null, "Action"),
          h("th", null, "Status"),
          h("th", null, "Detail"),
          h("th", null, "Sent"),
          h("th", { class: "col-sender" }, "By"),
          h("th", null, h("span", { class: "visually-hidden" }, "Cancel")),
        ),
      ),
      this.tbody,
    );
    this.element = h(
      "section",
      { class: "card node-commands", "aria-labelledby": "commands-title" },
      h("h2", { id: "commands-title" }, "Commands"),
      this.buttons,
      this.confirm,
      this.form,
      this.error,
      this.latest,
      h("h3", null, "History"),
      this.historyNote,
      h("div", { class: "scroll" }, this.table),
      this.more,
    );
    this.unsubscribe = socket.subscribe("command_updated", null, (event) => this.onEvent(event));
    this.unready = socket.onReady(() => this.loadPage(null));
    this.ticker = setInterval(() => this.tick(), 1000);
    this.loadActions();
  }

  // --- actions ---------------------------------------------------------------------------
  async loadActions() {
    let actions;
    try {
      ({ actions } = await api("GET", "/api/actions"));
    } catch (err) {
      if (!isSignedOut(err)) this.showError(`Could not load the actions: ${errorMessage(err)}`);
      return;
    }
    const simple = actions.filter((a) => !a.params.length);
    const withParams = actions.filter((a) => a.params.length);
    replace(
      this.buttons,
      simple.map((action) =>
        h(
          "button",
          {
            type: "button",
            class: "button",
            title: action.description,
            dataset: { action: action.name },
            onclick: () => this.ask(action.name),
          },
          actionLabel(action.name),
        ),
      ),
    );
    if (withParams.length) this.buildForm(withParams);
  }

  buildForm(actions) {
    const select = h(
      "select",
      { id: "command-action", name: "action" },
      actions.map((a) => h("option", { value: a.name }, actionLabel(a.name))),
    );
    const params = h("textarea", {
      id: "command-params",
      name: "params",
      rows: 2,
      spellcheck: "false",
      class: "mono",
    });
    const hint = h("p", { class: "hint", id: "command-params-hint" });
    params.setAttribute("aria-describedby", "command-params-hint");
    const describe = () => {
      const action = actions.find((a) => a.name === select.value);
      const names = action.params.map((p) => (p.required ? p.name : `${p.name}?`)).join(", ");
      setText(hint, `${action.description} Params: ${names}`);
      params.placeholder = `{${action.params
        .filter((p) => p.required && p.name !== "*")
        .map((p) => `"${p.name}": …`)
        .join(", ")}}`;
    };
    select.addEventListener("change", describe);
    describe();
    replace(
      this.form,
      h("div", { class: "field narrow-field" }, h("label", { for: "command-action" }, "Action"), select),
      h("div", { class: "field" }, h("label", { for: "command-params" }, "Params (JSON)"), params, hint),
      h("button", { type: "submit", class: "button" }, "Send"),
    );
    this.form.hidden = false;
    this.form.onsubmit = (event) => {
      event.preventDefault();
      let parsed;
      try {
        parsed = params.value.trim() ? JSON.parse(params.value) : {};
      } catch {
        this.showError("The params are not valid JSON.");
        return;
      }
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
        this.showError("The params must be a JSON object, e.g. {\"relay\": 1}.");
        return;
      }
      this.send(select.value, parsed);
    };
  }

  /** Send at once, or first ask (REBOOT). */
  ask(action) {
    const question = CONFIRM[action];
    if (!question) {
      this.send(action, {});
      return;
    }
    const yes = h("button", { type: "button", class: "button danger" }, actionLabel(action));
    const no = h("button", { type: "button", class: "button subtle" }, "Cancel");
    yes.addEventListener("click", () => {
      this.confirm.hidden = true;
      this.send(action, {});
    });
    no.addEventListener("click", () => {
      this.confirm.hidden = true;
    });
    replace(this.confirm, h("span", null, question), yes, no);
    this.confirm.hidden = false;
    yes.focus();
  }

  async send(action, params) {
    this.error.hidden = true;
    const path = `/api/nodes/${encodeURIComponent(this.nodeId)}/commands`;
    try {
      const command = await api("POST", path, { body: { action, params } });
      this.lastSent = command.id;
      this.upsert(command);
      this.showLatest(); // its events may have come first: show the newest we know
    } catch (err) {
      if (!isSignedOut(err)) this.showError(errorMessage(err));
    }
  }

  async cancel(command) {
    try {
      this.upsert(await api("POST", `/api/commands/${encodeURIComponent(command.id)}/cancel`));
    } catch (err) {
      if (!isSignedOut(err)) this.showError(errorMessage(err));
    }
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = false;
  }

  // --- history ---------------------------------------------------------------------------
  /** Load one page of history: the newest (`before` null, also after a reconnect) or older ones. */
  async loadPage(before) {
    let query = `node_id=${encodeURIComponent(this.nodeId)}&limit=${PAGE}`;
    if (before !== null) query += `&before=${before}`;
    try {
      const { commands } = await api("GET", `/api/commands?${query}`);
      for (const command of commands) this.upsert(command);
      // A reload after a reconnect refreshes the newest page and leaves the paging where it was.
      if (before !== null || this.oldest === null) {
        if (commands.length) this.oldest = commands.at(-1).created;
        this.more.hidden = commands.length < PAGE;
      }
      replace(this.historyNote, this.commands.size ? null : notice("No commands sent to this node yet."));
    } catch (err) {
      if (!isSignedOut(err)) replace(this.historyNote, notice(errorMessage(err), "error"));
    }
  }

  onEvent(event) {
    const command = event.data && event.data.command;
    if (command && command.node_id === this.nodeId) this.upsert(command);
  }

  /** Take the newer of what we have and `command` (events and answers may cross), and draw it. */
  upsert(command) {
    const known = this.commands.get(command.id);
    if (known && (known.updated > command.updated || known.history.length > command.history.length)) return;
    this.commands.set(command.id, command);
    let row = this.rows.get(command.id);
    if (!row) {
      row = this.createRow(command);
      this.rows.set(command.id, row);
      const after = [...this.tbody.children].find((tr) => Number(tr.dataset.created) < command.created);
      this.tbody.insertBefore(row.tr, after ?? null);
    }
    this.updateRow(row, command);
    this.table.hidden = false;
    replace(this.historyNote);
    if (command.id === this.lastSent) this.showLatest();
  }

  /** The status of the command sent last from this page, said to screen readers too (role=status). */
  showLatest() {
    const command = this.commands.get(this.lastSent);
    if (!command) return;
    const detail = command.detail ? `: ${command.detail}` : "";
    setText(this.latest, `${actionLabel(command.action)}: ${COMMAND_LABELS[command.status]}${detail}`);
  }

  createRow(command) {
    const sent = h("td", { class: "nowrap", title: formatDateTime(command.created), dataset: { label: "Sent" } });
    const status = h("td", { class: "cmd-status", dataset: { label: "Status" } });
    const detail = h("td", { class: "cmd-detail", dataset: { label: "Detail" } });
    const actions = h("td", { class: "actions-cell" });
    const params = Object.keys(command.params || {}).length ? JSON.stringify(command.params) : "";
    const tr = h(
      "tr",
      { dataset: { commandId: command.id, created: String(command.created) } },
      h(
        "td",
        null,
        h("span", { class: "cmd-action" }, actionLabel(command.action)),
        params ? h("div", { class: "mono muted small" }, params) : null,
      ),
      status,
      detail,
      sent,
      h("td", { class: "muted col-sender", dataset: { label: "By" } }, command.sender || "—"),
      actions,
    );
    return { tr, sent, status, detail, actions, statusShown: null };
  }

  updateRow(row, command) {
    setText(row.sent, formatAgo(command.created));
    if (row.statusShown !== command.status) {
      row.statusShown = command.status;
      row.tr.dataset.status = command.status;
      replace(row.status, commandBadge(command.status));
      row.status.title = command.history.map((step) => `${COMMAND_LABELS[step.status]} ${formatDateTime(step.ts)}`)
        .join("\n");
      replace(
        row.actions,
        PENDING.has(command.status)
          ? h(
              "button",
              {
                type: "button",
                class: "button subtle danger-text",
                "aria-label": `Cancel ${actionLabel(command.action)}`,
                onclick: () => this.cancel(command),
              },
              "Cancel",
            )
          : null,
      );
    }
    setText(row.detail, command.detail || "");
  }

  tick() {
    for (const [id, row] of this.rows) setText(row.sent, formatAgo(this.commands.get(id).created));
  }

  destroy() {
    clearInterval(this.ticker);
    this.unsubscribe();
    this.unready();
  }
}

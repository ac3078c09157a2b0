/**
 * Long-lived tokens for scripts and Prometheus (create: shown once, after the
 * password is entered again; revoke), and the user's sign-in sessions (revoke
 * one to sign that device out).
 */
import { api, errorMessage, isSignedOut } from "../api.js";
import { signOut } from "../auth.js";
import { h, notice, replace } from "../dom.js";
import { formatAgo, formatDateTime, formatTime } from "../format.js";

export function mount(main, { setTitle, navigate }) {
  setTitle("Tokens");
  const created = h("div");
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const name = h("input", {
    id: "token-name",
    name: "name",
    required: true,
    maxlength: 100,
    placeholder: "e.g. prometheus",
  });
  const days = h("input", {
    id: "token-days",
    name: "days",
    type: "number",
    min: 1,
    max: 3650,
    placeholder: "never expires",
  });
  const password = h("input", {
    id: "token-password",
    name: "password",
    type: "password",
    required: true,
    autocomplete: "current-password",
  });
  const submit = h("button", { type: "submit", class: "button primary" }, "Create token");
  const form = h(
    "form",
    { class: "inline-form" },
    h("div", { class: "field" }, h("label", { for: "token-name" }, "Name"), name),
    h("div", { class: "field narrow-field" }, h("label", { for: "token-days" }, "Valid for (days)"), days),
    h("div", { class: "field" }, h("label", { for: "token-password" }, "Your password"), password),
    submit,
  );
  const longLived = h("tbody");
  const sessions = h("tbody");
  const longLivedNote = h("div");
  const sessionsNote = h("div");
  replace(
    main,
    h("div", { class: "page-head" }, h("h1", null, "Tokens")),
    h(
      "section",
      { class: "card" },
      h("h2", null, "Long-lived access tokens"),
      h(
        "p",
        { class: "muted" },
        "For scripts and Prometheus: send it as ",
        h("code", null, "Authorization: Bearer <token>"),
        ". A token is shown once, when it is created; creating one asks for your password again.",
      ),
      form,
      error,
      created,
      h(
        "div",
        { class: "scroll" },
        h("table", { class: "table tokens cards", dataset: { kind: "long_lived" } }, head(), longLived),
      ),
      longLivedNote,
    ),
    h(
      "section",
      { class: "card" },
      h("h2", null, "Sign-in sessions"),
      h("p", { class: "muted" }, "Browsers signed in as you. Revoking one signs it out."),
      h(
        "div",
        { class: "scroll" },
        h("table", { class: "table tokens cards", dataset: { kind: "refresh" } }, head("Browser"), sessions),
      ),
      sessionsNote,
    ),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    const body = { name: name.value.trim(), password: password.value };
    if (days.value) body.lifetime_days = Number(days.value);
    try {
      const token = await api("POST", "/api/auth/tokens", { body });
      name.value = "";
      days.value = "";
      password.value = "";
      showCreated(token);
      await load();
    } catch (err) {
      if (isSignedOut(err)) return;
      error.textContent = errorMessage(err);
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });

  function showCreated(token) {
    const value = h("input", {
      class: "mono token-value",
      readonly: true,
      value: token.token,
      "aria-label": "The new token",
    });
    const copy = h("button", { type: "button", class: "button" }, "Copy");
    copy.addEventListener("click", async () => {
      value.select();
      try {
        await navigator.clipboard.writeText(token.token);
        copy.textContent = "Copied";
      } catch {
        copy.textContent = "Press Ctrl+C";
      }
    });
    replace(
      created,
      h(
        "div",
        { class: "callout success new-token" },
        h("p", null, h("strong", null, `Token “${token.name}” created.`), " Copy it now: it will not be shown again."),
        h("div", { class: "copy-row" }, value, copy),
        h("button", { type: "button", class: "button subtle", onclick: () => replace(created) }, "Done"),
      ),
    );
    value.select();
  }

  function head(first = "Name") {
    return h(
      "thead",
      null,
      h(
        "tr",
        null,
        h("th", null, first),
        h("th", null, "Created"),
        h("th", null, "Last used"),
        h("th", null, "Expires"),
        h("th", null, h("span", { class: "visually-hidden" }, "Revoke")),
      ),
    );
  }

  function row(token) {
    const actions = h("td", { class: "actions-cell" });
    const revoke = h(
      "button",
      { type: "button", class: "button subtle danger-text" },
      token.current ? "Sign out here" : "Revoke",
    );
    revoke.addEventListener("click", () => {
      const yes = h("button", { type: "button", class: "button danger" }, "Revoke");
      const no = h("button", { type: "button", class: "button subtle" }, "Keep");
      no.addEventListener("click", () => replace(actions, revoke));
      yes.addEventListener("click", async () => {
        yes.disabled = true;
        try {
          await api("DELETE", `/api/auth/tokens/${encodeURIComponent(token.id)}`);
          if (token.current) {
            await signOut();
            navigate("/signin", { replace: true });
          } else await load();
        } catch (err) {
          if (isSignedOut(err)) return;
          replace(actions, h("span", { class: "form-error" }, errorMessage(err)));
        }
      });
      replace(actions, h("span", { class: "confirm" }, "Sure? ", yes, no));
    });
    actions.append(revoke);
    return h(
      "tr",
      { dataset: { tokenId: token.id } },
      h(
        "td",
        { class: "token-cell" },
        h("span", { class: "token-name" }, token.name || "—"),
        token.current ? h("span", { class: "pill" }, "this browser") : null,
        token.address ? h("div", { class: "muted small token-address" }, `from ${token.address}`) : null,
      ),
      h("td", { title: formatDateTime(token.created), dataset: { label: "Created" } }, formatTime(token.created)),
      h(
        "td",
        { class: "last-used", title: formatDateTime(token.last_used), dataset: { label: "Last used" } },
        token.current ? "now (this browser)" : formatAgo(token.last_used),
      ),
      h(
        "td",
        { title: formatDateTime(token.expires), dataset: { label: "Expires" } },
        token.expires ? formatTime(token.expires) : "never",
      ),
      actions,
    );
  }

  async function load() {
    try {
      const { tokens } = await api("GET", "/api/auth/tokens");
      const byNewest = (a, b) => b.created - a.created;
      const longOnes = tokens.filter((t) => t.kind === "long_lived").sort(byNewest);
      const sessionOnes = tokens.filter((t) => t.kind !== "long_lived").sort(byNewest);
      replace(longLived, longOnes.map(row));
      replace(sessions, sessionOnes.map(row));
      replace(longLivedNote, longOnes.length ? null : notice("No long-lived tokens yet."));
      replace(sessionsNote, sessionOnes.length ? null : notice("No sessions."));
    } catch (err) {
      if (!isSignedOut(err)) replace(longLivedNote, notice(errorMessage(err), "error"));
    }
  }

  load();
  return () => {};
}

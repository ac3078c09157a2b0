/**
 * The system page's "Sign-in bans" card: addresses banned after repeated
 * failed sign-ins (`GET /api/auth/bans`), each with a button to lift the ban
 * (`DELETE /api/auth/bans/{address}`, recorded in the audit trail).  A ban
 * only stops signing in with a password from that address; people already
 * signed in there keep working, so this is for letting someone sign in again
 * before the ban runs out.
 */
import { api, errorMessage, isSignedOut } from "./api.js";
import { h, notice, replace } from "./dom.js";
import { formatDateTime, formatTime } from "./format.js";

export class BansCard {
  constructor() {
    this.body = h("div");
    this.element = h(
      "section",
      { class: "card wide-card", dataset: { card: "sign-in-bans" } },
      h("h2", null, "Sign-in bans"),
      h(
        "p",
        { class: "muted" },
        "Addresses that failed to sign in too often. Signed-in people there keep working; lifting a ban lets " +
          "the address sign in again at once.",
      ),
      this.body,
    );
  }

  async load() {
    try {
      const { bans } = await api("GET", "/api/auth/bans");
      this.render(bans);
    } catch (err) {
      if (!isSignedOut(err)) replace(this.body, notice(`Could not load the bans: ${errorMessage(err)}`, "error"));
    }
  }

  render(bans) {
    if (!bans.length) {
      replace(this.body, notice("No address is banned."));
      return;
    }
    replace(
      this.body,
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          { class: "table bans" },
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              h("th", null, "Address"),
              h("th", null, "Banned until"),
              h("th", null, h("span", { class: "visually-hidden" }, "Lift")),
            ),
          ),
          h(
            "tbody",
            null,
            bans.map((ban) => this.row(ban)),
          ),
        ),
      ),
    );
  }

  row(ban) {
    const actions = h("td", { class: "actions-cell" });
    const lift = h("button", { type: "button", class: "button subtle" }, "Lift ban");
    lift.addEventListener("click", async () => {
      lift.disabled = true;
      try {
        await api("DELETE", `/api/auth/bans/${encodeURIComponent(ban.address)}`);
        await this.load();
      } catch (err) {
        if (isSignedOut(err)) return;
        replace(actions, h("span", { class: "form-error" }, errorMessage(err)));
      }
    });
    actions.append(lift);
    return h(
      "tr",
      { dataset: { address: ban.address } },
      h("td", { class: "mono" }, ban.address),
      h("td", { title: formatDateTime(ban.until) }, formatTime(ban.until)),
      actions,
    );
  }
}

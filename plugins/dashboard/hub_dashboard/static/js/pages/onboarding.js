/**
 * First run (public): create the owner account with the one-time token from the link `hub run` printed.
 *
 * The token travels in the URL fragment (`/onboarding#token=…`), which browsers
 * never send to a server or put in a Referer; it is read once and removed from
 * the address bar and history.
 */
import { errorMessage } from "../api.js";
import { startSession } from "../auth.js";
import { h, link, replace } from "../dom.js";
import { request } from "../http.js";

const MIN_PASSWORD = 8;

export function mount(main, { navigate, setTitle }) {
  setTitle("Create the owner account");
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (location.hash) history.replaceState(null, "", location.pathname);
  const card = h("section", { class: "card auth-card" });
  replace(main, card);
  const header = [
    h("div", { class: "auth-brand" }, h("span", { class: "brand-mark", "aria-hidden": "true" }), "hub"),
    h("h1", null, "Welcome"),
  ];

  if (!token) {
    replace(
      card,
      header,
      h(
        "p",
        null,
        "This page needs the one-time link that ",
        h("code", null, "hub run"),
        " prints while the hub has no owner account.",
      ),
      h("p", null, "Or create the account on the hub's host: ", h("code", null, "hub user create --username NAME")),
      link("/signin", { class: "button" }, "Go to sign-in"),
    );
    return () => {};
  }

  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const username = h("input", {
    id: "username",
    name: "username",
    autocomplete: "username",
    required: true,
    autofocus: true,
    maxlength: 64,
  });
  const password = h("input", {
    id: "password",
    name: "password",
    type: "password",
    autocomplete: "new-password",
    required: true,
    minlength: MIN_PASSWORD,
  });
  const confirm = h("input", {
    id: "confirm",
    name: "confirm",
    type: "password",
    autocomplete: "new-password",
    required: true,
  });
  const submit = h("button", { type: "submit", class: "button primary wide" }, "Create account and sign in");
  const form = h(
    "form",
    { class: "stack" },
    h("label", { for: "username" }, "Username"),
    username,
    h("label", { for: "password" }, "Password"),
    password,
    h("p", { class: "hint" }, `At least ${MIN_PASSWORD} characters; a passphrase of a few words is best.`),
    h("label", { for: "confirm" }, "Repeat the password"),
    confirm,
    error,
    submit,
  );
  const fail = (text) => {
    error.textContent = text;
    error.hidden = false;
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    if (password.value.length < MIN_PASSWORD) return fail(`The password needs at least ${MIN_PASSWORD} characters.`);
    if (password.value !== confirm.value) return fail("The passwords differ.");
    submit.disabled = true;
    try {
      const result = await request("POST", "/api/onboarding", {
        body: { token, username: username.value.trim(), password: password.value },
      });
      startSession(result, false);
      navigate("/", { replace: true });
    } catch (err) {
      if (err.code === "onboarding_done") {
        replace(
          card,
          header,
          h("p", null, "The owner account exists already."),
          link("/signin", { class: "button primary" }, "Sign in"),
        );
      } else {
        fail(errorMessage(err));
      }
    } finally {
      submit.disabled = false;
    }
  });
  replace(card, header, h("p", { class: "lead" }, "Create the owner account of this hub. The link works once."), form);
  return () => {};
}

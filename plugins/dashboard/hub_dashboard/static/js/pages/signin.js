/** The sign-in page (public).  Explains how to create the owner account while the hub has none. */
import { errorMessage } from "../api.js";
import { isSignedIn, signIn } from "../auth.js";
import { h, replace } from "../dom.js";
import { request } from "../http.js";

/** Only a path of this app may follow sign-in (never `//other.example`, never a full URL). */
function safeNext(value) {
  return typeof value === "string" && value.startsWith("/") && !value.startsWith("//") ? value : "/";
}

export function mount(main, { navigate, setTitle, message }) {
  setTitle("Sign in");
  const next = safeNext(new URLSearchParams(location.search).get("next"));
  if (isSignedIn()) {
    queueMicrotask(() => navigate(next, { replace: true }));
    return () => {};
  }
  const error = h("p", { class: "form-error", role: "alert", hidden: !message }, message || "");
  const onboardingNote = h("div", { class: "callout", hidden: true });
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
    autocomplete: "current-password",
    required: true,
  });
  const keep = h("input", { id: "keep", name: "keep", type: "checkbox" });
  const submit = h("button", { type: "submit", class: "button primary wide" }, "Sign in");
  const form = h(
    "form",
    { class: "stack" },
    h("label", { for: "username" }, "Username"),
    username,
    h("label", { for: "password" }, "Password"),
    password,
    h("label", { class: "check", for: "keep" }, keep, "Keep me signed in on this device"),
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      await signIn(username.value.trim(), password.value, keep.checked);
      navigate(next, { replace: true });
    } catch (err) {
      error.textContent = err.status === 401 ? "Wrong username or password." : errorMessage(err);
      error.hidden = false;
      password.value = "";
      password.focus();
    } finally {
      submit.disabled = false;
    }
  });
  replace(
    main,
    h(
      "section",
      { class: "card auth-card" },
      h("div", { class: "auth-brand" }, h("span", { class: "brand-mark", "aria-hidden": "true" }), "hub"),
      h("h1", null, "Sign in"),
      onboardingNote,
      form,
    ),
  );
  let alive = true;
  request("GET", "/api/onboarding")
    .then((status) => {
      if (!alive || !status.required) return;
      replace(
        onboardingNote,
        h("strong", null, "This hub has no owner account yet. "),
        "Open the one-time link that ",
        h("code", null, "hub run"),
        " printed in its log (",
        h("code", null, "…/onboarding#token=…"),
        "), or create the account with ",
        h("code", null, "hub user create --username NAME"),
        ".",
      );
      onboardingNote.hidden = false;
    })
    .catch(() => {});
  return () => {
    alive = false;
  };
}

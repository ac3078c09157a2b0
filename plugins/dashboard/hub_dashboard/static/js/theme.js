/**
 * Light, dark, or the system's choice (the default), remembered in this browser (localStorage).
 *
 * The choice becomes `data-theme="light|dark"` on <html>, which base.css reads; a change (the
 * user's, or the system's while "system" is chosen) fires `hub:theme` on the document so charts,
 * which paint with resolved colours, redraw.  Imported first by app.js, so the first paint is
 * already in the right theme.
 */
const KEY = "hub.theme";
export const THEMES = [
  ["system", "System theme"],
  ["light", "Light"],
  ["dark", "Dark"],
];
const systemDark = window.matchMedia("(prefers-color-scheme: dark)");

/** "system", "light" or "dark". */
export function themeChoice() {
  const stored = localStorage.getItem(KEY);
  return THEMES.some(([key]) => key === stored) ? stored : "system";
}

/** Remember `choice` and apply it. */
export function setTheme(choice) {
  if (choice === "system") localStorage.removeItem(KEY);
  else localStorage.setItem(KEY, choice);
  apply();
}

function apply() {
  const choice = themeChoice();
  const dark = choice === "dark" || (choice === "system" && systemDark.matches);
  const theme = dark ? "dark" : "light";
  if (document.documentElement.dataset.theme === theme) return;
  document.documentElement.dataset.theme = theme;
  document.dispatchEvent(new Event("hub:theme"));
}

systemDark.addEventListener("change", apply);
window.addEventListener("storage", (event) => {
  if (event.key === KEY) apply(); // chosen in another tab
});
apply();

/**
 * The node page's edit form: rename, describe, place in an area and tag (PATCH), or delete the node
 * (with a second click to confirm).  Tags are typed comma-separated; the hub normalises them.
 */
import { api, errorMessage, isSignedOut } from "./api.js";
import { h, replace } from "./dom.js";

/**
 * Show the form in `container`.
 * @param {{onSaved: (node: any) => void, onDeleted: () => void, onClose: () => void}} handlers
 */
export function openEditor(container, node, { onSaved, onDeleted, onClose }) {
  const path = `/api/nodes/${encodeURIComponent(node.node_id)}`;
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const name = h("input", { id: "node-name", name: "name", required: true, maxlength: 100, value: node.name });
  const text = h("textarea", {
    id: "node-description",
    name: "description",
    rows: 3,
    maxlength: 1000,
    value: node.description,
  });
  const area = h("input", {
    id: "node-area",
    name: "area",
    maxlength: 64,
    value: node.area || "",
    placeholder: "e.g. greenhouse 2",
    list: "known-areas",
  });
  const tags = h("input", {
    id: "node-tags",
    name: "tags",
    value: (node.tags || []).join(", "),
    placeholder: "e.g. beta, relay-board",
  });
  const areas = h("datalist", { id: "known-areas" });
  api("GET", "/api/areas")
    .then((body) => replace(areas, body.areas.map((a) => h("option", { value: a.area }))))
    .catch(() => {}); // only suggestions
  const save = h("button", { type: "submit", class: "button primary" }, "Save");
  const fail = (err) => {
    if (isSignedOut(err)) return;
    error.textContent = errorMessage(err);
    error.hidden = false;
  };
  const confirmDelete = h("button", { type: "button", class: "button danger", hidden: true }, "Delete for good");
  confirmDelete.addEventListener("click", async () => {
    try {
      await api("DELETE", path);
      onDeleted();
    } catch (err) {
      fail(err);
    }
  });
  const askDelete = h("button", { type: "button", class: "button subtle danger-text" }, "Delete node…");
  askDelete.addEventListener("click", () => {
    askDelete.hidden = true;
    confirmDelete.hidden = false;
  });
  const form = h(
    "form",
    { class: "stack" },
    h("h2", null, "Edit node"),
    h("label", { for: "node-name" }, "Name"),
    name,
    h("label", { for: "node-description" }, "Description"),
    text,
    h("label", { for: "node-area" }, "Area"),
    area,
    areas,
    h("label", { for: "node-tags" }, "Tags"),
    tags,
    h("p", { class: "hint" }, "Comma-separated; an empty area takes the node out of its area."),
    error,
    h(
      "div",
      { class: "actions" },
      save,
      h("button", { type: "button", class: "button", onclick: onClose }, "Cancel"),
      h("span", { class: "spacer" }),
      askDelete,
      confirmDelete,
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    try {
      const body = {
        name: name.value.trim(),
        description: text.value,
        area: area.value.trim() || null,
        tags: tags.value
          .split(",")
          .map((tag) => tag.trim())
          .filter(Boolean),
      };
      onSaved(await api("PATCH", path, { body }));
    } catch (err) {
      fail(err);
    } finally {
      save.disabled = false;
    }
  });
  replace(container, form);
  name.focus();
}

// DOM helpers for the console and the user page: elements built from data (never HTML
// strings, so nothing an account or a push service named can become markup), forms with a
// label on every control, and one status region that screen readers hear.

/** An element with attributes (on* keys are listeners) and children (strings become text). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

let fieldCount = 0;

/** A labelled control: `kind` is an input type, "select" (with `options`) or "textarea". */
export function field(label, name, kind = "text", extra = {}) {
  const id = `f${++fieldCount}-${name}`;
  const { options, value, hint, ...attributes } = extra;
  let control;
  if (kind === "select") {
    control = h("select", { id, name, ...attributes },
      (options || []).map(([optionValue, text]) =>
        h("option", { value: optionValue, selected: optionValue === value }, text)));
  } else if (kind === "textarea") {
    control = h("textarea", { id, name, rows: 3, ...attributes }, value ?? "");
  } else if (kind === "checkbox") {
    control = h("input", { id, name, type: "checkbox", checked: Boolean(value), ...attributes });
  } else {
    control = h("input", { id, name, type: kind, value: value ?? "", ...attributes });
  }
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  const wrapper = kind === "checkbox"
    ? h("div", { class: "field check" }, control, h("label", { for: id }, label))
    : h("div", { class: "field" }, h("label", { for: id }, label), control);
  if (hintId) wrapper.append(h("p", { id: hintId, class: "hint" }, hint));
  return wrapper;
}

/** A form whose submit runs `action(values)`; an error is shown (and announced) in the form,
 *  at the field it names when the API's words name one. */
export function form(title, fields, submitText, action) {
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const button = h("button", { type: "submit" }, submitText);
  const element = h("form", { "aria-label": title }, fields, error, h("div", { class: "actions" }, button));
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    for (const marked of element.querySelectorAll("[aria-invalid]")) marked.removeAttribute("aria-invalid");
    button.disabled = true;
    try {
      await action(values(element));
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
      const named = [...element.elements].find((control) =>
        control.name && failure.message.includes(control.name));
      if (named) {
        named.setAttribute("aria-invalid", "true");
        named.setAttribute("aria-errormessage", error.id || (error.id = `e${++fieldCount}`));
        named.focus();
      }
    } finally {
      button.disabled = false;
    }
  });
  return element;
}

/** The form's values: checkboxes as booleans, the rest as strings. */
export function values(formElement) {
  const out = {};
  for (const control of formElement.elements) {
    if (!control.name) continue;
    out[control.name] = control.type === "checkbox" ? control.checked : control.value;
  }
  return out;
}

/** Says `text` in the page's status region (polite: read when the reader is free). */
export function say(text) {
  const status = document.getElementById("status");
  status.textContent = "";
  // A change the reader notices even when the same words come twice.
  requestAnimationFrame(() => { status.textContent = text; });
}

/** A table with a caption and header cells; `rows` are arrays of cells (nodes or text). On a
 *  narrow screen it scrolls sideways in a region the keyboard can reach. */
export function table(caption, headers, rows) {
  return h("div", { class: "scroll", tabindex: 0, role: "region", "aria-label": caption }, h("table", {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
    h("tbody", {}, rows.length
      ? rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))
      : h("tr", {}, h("td", { colspan: headers.length }, "None yet.")))));
}

/** A date as the reader's locale writes it. */
export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

/** A value shown once with a button that copies it. */
export function copyable(label, text) {
  const code = h("code", { class: "secret" }, text);
  const button = h("button", {
    type: "button",
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(text);
        say(`${label} copied.`);
      } catch {
        say(`Select the ${label} and copy it.`);
      }
    },
  }, `Copy ${label}`);
  return h("div", { class: "copyable" }, h("span", {}, `${label}: `), code, " ", button);
}

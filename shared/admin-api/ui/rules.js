// Filing rules as a form: each rule's conditions, what it does, and its place in the order.
// The rule set is sent whole (PUT), and the API's own checks answer: their words are shown.

import { h, field, say } from "./dom.js";

const FIELDS = [
  ["from", "From (or Sender)"],
  ["to_cc", "To or Cc"],
  ["subject", "Subject"],
  ["list_id", "List-Id"],
];
const MATCHES = [
  ["contains", "contains"],
  ["equals", "equals"],
  ["matches", "matches (* and ?)"],
];

/** An editor of `rules` (the API's FilingRule objects); `save(rules)` sends them. */
export function rulesEditor(rules, save) {
  let current = structuredClone(rules);
  const list = h("ol", { class: "rules" });
  const error = h("p", { class: "error", role: "alert", hidden: true });

  function render() {
    list.replaceChildren(...current.map((rule, index) => ruleItem(rule, index)));
  }

  function ruleItem(rule, index) {
    const label = rule.name || `Rule ${index + 1}`;
    const conditions = h("ul", { class: "conditions" },
      rule.conditions.map((condition, at) => conditionItem(rule, condition, at, label)));
    return h("li", { class: "rule" },
      h("fieldset", {},
        h("legend", {}, label),
        field("Name", "name", "text", {
          value: rule.name ?? "",
          oninput: (event) => { rule.name = event.target.value || null; },
        }),
        field("Conditions that must hold", "matching", "select", {
          value: rule.matching ?? "all",
          options: [["all", "all of them"], ["any", "any of them"]],
          onchange: (event) => { rule.matching = event.target.value; },
        }),
        conditions,
        h("button", {
          type: "button",
          onclick: () => {
            rule.conditions.push({ field: "subject", match: "contains", value: "" });
            render();
          },
        }, `Add a condition to ${label}`),
        field("File into folder (empty: Inbox)", "file_into", "text", {
          value: rule.file_into ?? "",
          oninput: (event) => { rule.file_into = event.target.value || null; },
        }),
        field("Mark as read", "mark_read", "checkbox", {
          value: rule.mark_read,
          onchange: (event) => { rule.mark_read = event.target.checked; },
        }),
        field("Stop here (later rules do not apply)", "stop", "checkbox", {
          value: rule.stop,
          onchange: (event) => { rule.stop = event.target.checked; },
        }),
        h("div", { class: "actions" },
          h("button", { type: "button", disabled: index === 0, onclick: () => move(index, -1) },
            `Move ${label} up`),
          h("button", { type: "button", disabled: index === current.length - 1, onclick: () => move(index, 1) },
            `Move ${label} down`),
          h("button", {
            type: "button",
            class: "danger",
            onclick: () => { current.splice(index, 1); render(); say(`${label} removed; save to keep it so.`); },
          }, `Remove ${label}`))));
  }

  function conditionItem(rule, condition, at, label) {
    const known = FIELDS.some(([value]) => value === condition.field);
    return h("li", { class: "condition" },
      field(`Header (${label}, condition ${at + 1})`, "field", "select", {
        value: known ? condition.field : "other",
        options: [...FIELDS, ["other", "another header…"]],
        onchange: (event) => {
          condition.field = event.target.value === "other" ? "x-header" : event.target.value;
          render();
        },
      }),
      known ? null : field(`Header name (${label}, condition ${at + 1})`, "field_name", "text", {
        value: condition.field,
        oninput: (event) => { condition.field = event.target.value; },
      }),
      field(`Match (${label}, condition ${at + 1})`, "match", "select", {
        value: condition.match,
        options: MATCHES,
        onchange: (event) => { condition.match = event.target.value; },
      }),
      field(`Value (${label}, condition ${at + 1})`, "value", "text", {
        value: condition.value,
        oninput: (event) => { condition.value = event.target.value; },
      }),
      h("button", {
        type: "button",
        disabled: rule.conditions.length === 1,
        onclick: () => { rule.conditions.splice(at, 1); render(); },
      }, `Remove condition ${at + 1} of ${label}`));
  }

  function move(index, by) {
    const [rule] = current.splice(index, 1);
    current.splice(index + by, 0, rule);
    render();
    say(`Moved; save to keep the new order.`);
  }

  /** The API names the rule ("rule 2: …") and what is wrong with it: that control is marked
   *  as invalid, points at the error, and takes focus. */
  function markField(message) {
    for (const marked of list.querySelectorAll("[aria-invalid]")) marked.removeAttribute("aria-invalid");
    const named = /^rule (\d+): (.*)$/.exec(message);
    const rule = named && list.children[Number(named[1]) - 1];
    if (!rule) return;
    const what = named[2];
    const control = rule.querySelector(
      what.includes("folder") || what.includes("file_into") || what.includes("does nothing") ? "input[name=file_into]"
        : what.includes("field") ? "[name=field], [name=field_name]"
          : what.includes("value") ? "input[name=value]"
            : what.includes("name") ? "input[name=name]"
              : "input, select");
    if (!control) return;
    error.id ||= "rules-error";
    control.setAttribute("aria-invalid", "true");
    control.setAttribute("aria-describedby", error.id);
    control.focus();
  }

  render();
  return h("section", { "aria-labelledby": "rules-title" },
    h("h3", { id: "rules-title" }, "Filing rules"),
    h("p", {}, "Rules apply in order; the last folder named wins, and a rule that stops ends the list."),
    list,
    error,
    h("div", { class: "actions" },
      h("button", {
        type: "button",
        onclick: () => {
          current.push({ name: null, matching: "all", conditions: [{ field: "from", match: "contains", value: "" }], file_into: null, mark_read: false, stop: false });
          render();
          list.lastElementChild?.querySelector("input")?.focus();
        },
      }, "Add a rule"),
      h("button", {
        type: "button",
        class: "primary",
        onclick: async () => {
          error.hidden = true;
          try {
            const saved = await save(current);
            current = structuredClone(saved);
            render();
            say("Filing rules saved.");
          } catch (failure) {
            error.textContent = failure.message;
            error.hidden = false;
            markField(failure.message);
          }
        },
      }, "Save filing rules")));
}

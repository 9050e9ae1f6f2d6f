// Accounts: a domain's list (paged, searched), a new one, and one account's page: its
// settings, its pushed folders picked from its real folders, its filing rules, its device
// link, and deleting it.

import { call, part } from "./api.js";
import { h, field, form, say, copyable, when } from "./dom.js";
import { show, go, link, confirmed, paged, pageQuery, failed } from "./screen.js";
import { rulesEditor } from "./rules.js";
import { integrationPanel } from "./integrated.js";

export async function accountsScreen(domain) {
  const shown = h("div", { "aria-live": "polite" });
  const search = h("input", { id: "account-search", type: "search", name: "prefix", autocomplete: "off" });
  const holder = h("div", {}, listed(""));
  function listed(prefix) {
    const query = new URLSearchParams({ limit: "50" });
    if (prefix) query.set("prefix", prefix);
    return paged(prefix ? `Accounts of ${domain} starting with “${prefix}”` : `Accounts of ${domain}`,
      ["Address", "Enabled", "Display name", "Created"],
      (cursor) => call("GET", `/admin/domains/${part(domain)}/accounts${pageQuery(cursor, query.toString())}`),
      (account) => [link(account.address, `account/${part(account.address)}`), account.enabled ? "yes" : "no",
        account.display_name ?? "—", when(account.created_at)]);
  }
  show(`Accounts of ${domain}`,
    h("form", {
      role: "search",
      onsubmit: (event) => {
        event.preventDefault();
        holder.replaceChildren(listed(search.value.trim()));
      },
    }, h("label", { for: "account-search" }, "Addresses starting with"), " ", search, " ", h("button", { type: "submit" }, "Find")),
    holder,
    h("h3", {}, "New account"),
    form("New account", [
      field("Address (or its local part)", "address", "text", { required: true }),
      field("Password (empty: one is made and shown once)", "password", "password", { autocomplete: "new-password", minlength: 8 }),
      field("Display name", "display_name", "text"),
      field("Quota in bytes (empty: none)", "quota_bytes", "number", { min: 1 }),
    ], "Create account", async (values) => {
      const body = { address: values.address };
      if (values.password) body.password = values.password;
      if (values.display_name) body.display_name = values.display_name;
      if (values.quota_bytes) body.quota_bytes = Number(values.quota_bytes);
      const created = await call("POST", `/admin/domains/${part(domain)}/accounts`, body);
      shown.replaceChildren(
        h("p", {}, "Created ", link(created.address, `account/${part(created.address)}`), "."),
        created.password ? copyable("Password", created.password) : null);
      say(`Account ${created.address} created${created.password ? "; copy its password now" : ""}.`);
      holder.replaceChildren(listed(""));
    }),
    shown);
}

export async function accountScreen(address) {
  const path = `/admin/accounts/${part(address)}`;
  const account = await call("GET", path);
  const [folders, rules] = await Promise.all([call("GET", `${path}/folders`), call("GET", `${path}/rules`)]);
  const domain = address.split("@").pop();
  show(`Account ${account.address}`,
    h("p", {}, link(`All accounts of ${domain}`, `accounts/${part(domain)}`)),
    form("Account settings", [
      field("Enabled", "enabled", "checkbox", { value: account.enabled }),
      field("Display name", "display_name", "text", { value: account.display_name }),
      field("Quota in bytes (empty: none)", "quota_bytes", "number", { value: account.quota_bytes, min: 1 }),
      field("Sender aliases (one per line)", "sender_aliases", "textarea", { value: account.sender_aliases.join("\n") }),
      field("New password (empty: unchanged)", "password", "password", { autocomplete: "new-password", minlength: 8 }),
    ], "Save account", async (values) => {
      const body = {
        enabled: values.enabled,
        display_name: values.display_name || null,
        quota_bytes: values.quota_bytes ? Number(values.quota_bytes) : null,
        sender_aliases: values.sender_aliases.split("\n").map((line) => line.trim()).filter(Boolean),
      };
      if (values.password) body.password = values.password;
      await call("PATCH", path, body);
      say(`Account ${address} saved.`);
    }),
    pushedFolders(path, folders.items.map((folder) => folder.name), account.pushed_folders),
    rulesEditor(rules.rules, async (edited) => (await call("PUT", `${path}/rules`, { rules: edited })).rules),
    await integrationPanel(address),
    h("h3", {}, "Delete"),
    h("button", {
      type: "button",
      class: "danger",
      onclick: async () => {
        if (!confirmed(`Delete ${address}? Its mail in every folder, its filing rules and its device link are lost; the push service is told.`)) return;
        try {
          await call("DELETE", path);
          say(`Account ${address} deleted.`);
          go(`accounts/${part(domain)}`);
        } catch (failure) { failed(failure); }
      },
    }, `Delete ${address}`));
}

/** The folders pushed to the device ("BlackBerry Inbox"), picked from the account's folders;
 *  INBOX always is. */
export function pushedFolders(path, folders, pushed, save) {
  const boxes = folders.filter((name) => name !== "INBOX").map((name) =>
    field(name, "folder", "checkbox", { value: pushed.includes(name), "data-folder": name }));
  return h("section", { "aria-labelledby": "pushed-title" },
    h("h3", { id: "pushed-title" }, "Pushed folders"),
    form("Pushed folders", [
      h("p", {}, "New mail in the Inbox is always pushed; also in these:"),
      boxes.length ? boxes : h("p", {}, "The account has no other folders yet."),
    ], "Save pushed folders", async () => {
      const chosen = boxes.map((box) => box.querySelector("input")).filter((input) => input.checked)
        .map((input) => input.dataset.folder);
      await (save ?? ((folders) => call("PUT", `${path}/pushed-folders`, { folders })))(chosen);
      say("Pushed folders saved.");
    }));
}

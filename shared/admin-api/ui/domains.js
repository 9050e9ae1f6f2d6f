// Domains: the list, a new one, and one domain's settings (the push switch, the Subscribe URL
// to give the push service, the SMTP server, folder aliases, DKIM) and its push secrets.

import { call, part } from "./api.js";
import { h, field, form, say, table, when, copyable } from "./dom.js";
import { show, go, link, confirmed, failed } from "./screen.js";

export async function domainsScreen() {
  const domains = await call("GET", "/admin/domains");
  show("Domains",
    table("Domains", ["Domain", "Push", "Subscribe URL", "SMTP server"], domains.items.map((domain) => [
      link(domain.name, `domain/${part(domain.name)}`),
      domain.push_enabled ? "on" : "off",
      domain.subscribe_url ?? "—",
      domain.smtp_server ?? "—",
    ])),
    h("h3", {}, "New domain"),
    form("New domain", [
      field("Domain name", "name", "text", { required: true, placeholder: "example.com" }),
      field("Push integration on", "push_enabled", "checkbox"),
      field("Subscribe URL", "subscribe_url", "url", { hint: "Where the push service sends SUBSCRIBE (https://…/subscribe)." }),
      field("SMTP server", "smtp_server", "text", { hint: "host[:port] the push service sends device mail through." }),
    ], "Create domain", async (values) => {
      const created = await call("POST", "/admin/domains", optional(values));
      say(`Domain ${created.name} created.`);
      go(`domain/${part(created.name)}`);
    }));
}

/** The DNS record to publish for the domain's DKIM key, or the API's words on why not. */
async function dkimRecord(name) {
  try {
    const record = await call("GET", `/admin/domains/${part(name)}/dkim-record`);
    return h("section", { "aria-labelledby": "dkim-title" },
      h("h3", { id: "dkim-title" }, "DKIM record to publish"),
      h("p", {}, `A ${record.type} record named `, h("code", {}, record.name), ":"),
      copyable("DKIM record", record.value));
  } catch (failure) {
    if (failure.status === 401) throw failure;
    return h("section", { "aria-labelledby": "dkim-title" },
      h("h3", { id: "dkim-title" }, "DKIM record to publish"), h("p", {}, failure.message));
  }
}

/** Empty text fields left out (the API's defaults), the rest as given. */
function optional(values) {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== ""));
}

/** Empty optional text as null: the API clears the setting. */
function clearing(values) {
  return Object.fromEntries(Object.entries(values).map(([name, value]) => [name, value === "" ? null : value]));
}

export async function domainScreen(name) {
  const domain = await call("GET", `/admin/domains/${part(name)}`);
  const secrets = await call("GET", `/admin/domains/${part(name)}/secrets`);
  const shown = h("div", { "aria-live": "polite" });
  const dkim = domain.dkim_selector ? await dkimRecord(name) : null;
  show(`Domain ${domain.name}`,
    h("nav", { "aria-label": `${domain.name}'s pages` }, h("ul", { class: "links" },
      h("li", {}, link("Accounts", `accounts/${part(name)}`)),
      h("li", {}, link("Integrated accounts", `integrated/${part(name)}`)),
      h("li", {}, link("Audit log", `audit/${part(name)}`)))),
    domain.subscribe_url ? copyable("Subscribe URL", domain.subscribe_url) : null,
    form("Domain settings", [
      field("Push integration on", "push_enabled", "checkbox", { value: domain.push_enabled }),
      field("Subscribe URL", "subscribe_url", "url", { value: domain.subscribe_url, hint: "Given to the push service; empty clears it." }),
      field("SMTP server", "smtp_server", "text", { value: domain.smtp_server }),
      field("Sent Items is", "sent_items_alias", "text", { value: domain.sent_items_alias, required: true }),
      field("Deleted Items is", "deleted_items_alias", "text", { value: domain.deleted_items_alias, required: true }),
      field("DKIM selector", "dkim_selector", "text", { value: domain.dkim_selector }),
      field("DKIM key reference", "dkim_key_ref", "text", { value: domain.dkim_key_ref, hint: "Where the key is kept (never the key itself)." }),
    ], "Save settings", async (values) => {
      await call("PATCH", `/admin/domains/${part(name)}`, clearing(values));
      say(`Settings of ${name} saved.`);
      domainScreen(name).catch(failed);
    }),
    dkim,
    h("h3", {}, "Push secrets"),
    h("p", {}, "The push service signs its requests with one of these. At most two live at once, so one can replace the other."),
    table("Live push secrets", ["Id", "Created", ""], secrets.items.map((secret) => [
      secret.id,
      when(secret.created_at),
      h("button", {
        type: "button",
        class: "danger",
        onclick: async () => {
          if (!confirmed(`Retire secret ${secret.id}? Requests signed with it are refused from now on.`)) return;
          try {
            await call("DELETE", `/admin/domains/${part(name)}/secrets/${part(secret.id)}`);
            say(`Secret ${secret.id} retired.`);
            domainScreen(name).catch(failed);
          } catch (failure) { failed(failure); }
        },
      }, `Retire ${secret.id}`),
    ])),
    h("button", {
      type: "button",
      onclick: async () => {
        try {
          const created = await call("POST", `/admin/domains/${part(name)}/secrets`);
          shown.replaceChildren(h("p", {}, "Shown only now: give it to the push service."), copyable("Secret", created.value));
          say("Secret created; copy it now.");
        } catch (failure) { failed(failure); }
      },
    }, "Create a push secret"),
    shown,
    h("h3", {}, "Delete"),
    h("button", {
      type: "button",
      class: "danger",
      onclick: async () => {
        if (!confirmed(`Delete ${name} and its push secrets? Only a domain without accounts can go.`)) return;
        try {
          await call("DELETE", `/admin/domains/${part(name)}`);
          say(`Domain ${name} deleted.`);
          go("domains");
        } catch (failure) { failed(failure); }
      },
    }, `Delete ${name}`));
}

// Integrated Accounts: the accounts a push service has linked (per domain, or server-wide),
// their device, generation, activation and new-mail notices; removing a link tells the push
// service; the activation mail can be sent again.

import { call, part } from "./api.js";
import { h, say, table, when } from "./dom.js";
import { show, link, confirmed, paged, pageQuery, failed } from "./screen.js";

function device(link) {
  return [link.device?.model, link.device?.pin && `PIN ${link.device.pin}`].filter(Boolean).join(", ") || "—";
}

function removeButton(address, after) {
  return h("button", {
    type: "button",
    class: "danger",
    onclick: async () => {
      if (!confirmed(`Remove ${address}'s device link? The push service is told, and the device gets no more mail until it subscribes again.`)) return;
      try {
        const answer = await call("DELETE", `/admin/accounts/${part(address)}/integration`);
        say(`${address} unlinked; the push service was ${answer.unlinked_notice === "delivered" ? "told" : "not reached"}.`);
        after();
      } catch (failure) { failed(failure); }
    },
  }, `Remove ${address}'s link`);
}

function resendButton(address) {
  return h("button", {
    type: "button",
    onclick: async () => {
      try {
        const answer = await call("POST", `/admin/accounts/${part(address)}/integration/resend-activation`);
        say(`Activation mail for ${address}: ${answer.activation}.`);
      } catch (failure) { failed(failure); }
    },
  }, `Resend ${address}'s activation`);
}

/** How a link's new-mail notices are going: pending, last delivered, last failure. */
function noticeCells(notices) {
  return [
    notices.pending,
    when(notices.last_delivered_at),
    notices.last_failure ? `${when(notices.last_failure.at)}: ${notices.last_failure.error}` : "—",
  ];
}

export async function integratedScreen(domain) {
  const path = domain ? `/admin/domains/${part(domain)}/integrated-accounts` : "/admin/integrated-accounts";
  const again = () => integratedScreen(domain).catch(failed);
  show(domain ? `Integrated accounts of ${domain}` : "Integrated accounts",
    paged("Linked accounts, newest first",
      ["Account", "Device", "Generation", "Since", "Activation mail", "Notices pending", "Last delivered", "Last failure", ""],
      (cursor) => call("GET", path + pageQuery(cursor)),
      (item) => [
        link(item.address, `account/${part(item.address)}`),
        device(item),
        item.generation,
        when(item.linked_at),
        item.activation,
        ...noticeCells(item.notices),
        h("div", { class: "actions" }, resendButton(item.address), removeButton(item.address, again)),
      ]));
}

/** The account's device link on its page: none, or the link with its notices. */
export async function integrationPanel(address) {
  const panel = h("section", { "aria-labelledby": "link-title" }, h("h3", { id: "link-title" }, "Device link"));
  let detail;
  try {
    detail = await call("GET", `/admin/accounts/${part(address)}/integration`);
  } catch (failure) {
    if (failure.status !== 404) throw failure;
    panel.append(h("p", {}, "Not an Integrated Account: no push service has linked it."));
    return panel;
  }
  const notices = detail.notices;
  panel.append(
    table("The link", ["Device", "Generation", "Since", "Activation mail", "Notices pending", "Last delivered", "Last failure"], [[
      device(detail), detail.generation, when(detail.linked_at), detail.activation, ...noticeCells(notices),
    ]]),
    h("div", { class: "actions" }, resendButton(address),
      removeButton(address, () => { panel.replaceChildren(h("h3", { id: "link-title" }, "Device link"), h("p", {}, "Unlinked.")); })));
  return panel;
}

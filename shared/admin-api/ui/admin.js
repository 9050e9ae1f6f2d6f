// The admin console: a hash-routed page over the admin API. Each screen is a function that
// fills <main> from the API; nothing is kept between screens but the token.

import { call, signIn, signOut, signedIn, rememberDomainScope, domainScoped } from "./api.js";
import { h, field, form, say, table, when, copyable } from "./dom.js";
import { show, go, confirmed, paged, pageQuery, failed } from "./screen.js";
import { domainsScreen, domainScreen } from "./domains.js";
import { accountsScreen, accountScreen } from "./accounts.js";
import { integratedScreen } from "./integrated.js";

const nav = document.getElementById("nav");
const signOutButton = document.getElementById("sign-out");

/** Routes: `#/name/argument` → the screen that shows it. */
const screens = {
  server: serverScreen,
  domains: domainsScreen,
  domain: domainScreen,
  accounts: accountsScreen,
  account: accountScreen,
  integrated: integratedScreen,
  audit: auditScreen,
  tokens: tokensScreen,
};

function signInScreen() {
  nav.hidden = true;
  signOutButton.hidden = true;
  show("Sign in",
    h("p", {}, "Use an admin token (pma_…). A domain's token sees only its domain. The token is kept in this tab only."),
    form("Sign in", [field("Admin token", "token", "password", { required: true, autocomplete: "off" })], "Sign in",
      async ({ token }) => {
        signIn(`Bearer ${token.trim()}`);
        try {
          await call("GET", "/admin/domains");
          // A domain's token may not read the server's settings: that is how it is told apart.
          const server = await call("GET", "/admin/server").then(() => true, (failure) => {
            if (failure.status === 403) return false;
            throw failure;
          });
          rememberDomainScope(!server);
        } catch (failure) {
          signOut();
          throw failure;
        }
        say("Signed in.");
        go("domains");
        route();
      }));
}

async function serverScreen() {
  const settings = await call("GET", "/admin/server");
  const switchForm = form("Server-wide push", [
    field("Push integration on, server-wide", "push_enabled", "checkbox", { value: settings.push_enabled }),
  ], "Save", async ({ push_enabled }) => {
    await call("PUT", "/admin/server", { push_enabled });
    say(`Push integration is ${push_enabled ? "on" : "off"} server-wide.`);
  });
  const health = await call("GET", "/admin/health");
  const counts = health.notices;
  show("Server",
    h("p", {}, "Push integration must be on here and for the domain before a push service may SUBSCRIBE."),
    switchForm,
    h("h3", {}, "Health"),
    table("Listeners and queues", ["IMAP listener", "Last IMAP heartbeat", "Relay jobs due now"], [[
      health.imap_alive ? "running" : "not running: SUBSCRIBE is refused",
      when(health.imap_heartbeat),
      health.relay_due >= 1000 ? "1000 or more" : health.relay_due,
    ]]),
    h("h3", {}, "New-mail notices"),
    table("New-mail notices, server-wide", ["Pending", "Delivered", "Failed attempts", "Dropped (superseded)", "Dropped (expired)"],
      [[counts.pending, counts.delivered, counts.failed_attempts, counts.dropped_stale, counts.dropped_expired]]));
}

async function auditScreen(domain) {
  const path = domain ? `/admin/domains/${encodeURIComponent(domain)}/audit` : "/admin/audit";
  show(domain ? `Audit log of ${domain}` : "Audit log",
    domain ? null : h("p", {}, "Server-wide changes. Each domain's own are on its page."),
    paged("Changes, newest first", ["When", "Who", "What", "Target"],
      (cursor) => call("GET", path + pageQuery(cursor)),
      (entry) => [when(entry.at), entry.actor, entry.action, entry.target]));
}

async function tokensScreen() {
  const tokens = await call("GET", "/admin/tokens");
  const shown = h("div", { "aria-live": "polite" });
  show("Admin tokens",
    table("Tokens", ["Label", "Scope", "Created", ""], tokens.items.map((token) => [
      token.label,
      token.scope === "domain" ? `domain ${token.domain}` : "server",
      when(token.created_at),
      h("button", {
        type: "button",
        class: "danger",
        onclick: async () => {
          if (!confirmed(`Revoke the token "${token.label}"? Whoever uses it is locked out at once.`)) return;
          try {
            await call("DELETE", `/admin/tokens/${encodeURIComponent(token.id)}`);
            say(`Token ${token.label} revoked.`);
            tokensScreen().catch(failed);
          } catch (failure) { failed(failure); }
        },
      }, `Revoke ${token.label}`),
    ])),
    h("h3", {}, "New token"),
    form("New token", [
      field("Label", "label", "text", { required: true, maxlength: 128 }),
      field("Scope", "scope", "select", { options: [["domain", "one domain"], ["server", "the whole server"]], value: "domain" }),
      field("Domain (for a domain's token)", "domain", "text"),
    ], "Create token", async ({ label, scope, domain }) => {
      const body = { label, scope };
      if (scope === "domain") body.domain = domain;
      const created = await call("POST", "/admin/tokens", body);
      shown.replaceChildren(h("p", {}, "Shown only now: copy it before you leave this page."), copyable("Token", created.token));
      say("Token created; copy it now.");
    }),
    shown);
}

/** Shows the screen the hash names (the sign-in screen without a token). */
async function route() {
  if (!signedIn()) return signInScreen();
  nav.hidden = false;
  signOutButton.hidden = false;
  for (const item of nav.querySelectorAll("[data-server-only]")) item.hidden = domainScoped();
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const screen = screens[name] || domainsScreen;
  for (const item of nav.querySelectorAll("a")) {
    item.toggleAttribute("aria-current", item.getAttribute("href") === `#/${name}`);
  }
  try {
    await screen(...rest.map(decodeURIComponent));
  } catch (failure) {
    if (failure.status === 401) return failed(failure);
    show("Not shown", h("p", { class: "error", role: "alert" }, failure.message));
  }
}

signOutButton.addEventListener("click", () => {
  signOut();
  say("Signed out.");
  location.hash = "";
  route();
});
window.addEventListener("hashchange", route);
route();

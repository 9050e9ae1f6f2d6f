// The user's own page: with the account's own address and password, the folders pushed to the
// device, the filing rules, and the state of the device link. The same /self API any client
// may call.

import { call, signIn, signOut, signedIn } from "./api.js";
import { h, field, form, say, table, when } from "./dom.js";
import { show, failed } from "./screen.js";
import { rulesEditor } from "./rules.js";
import { pushedFolders } from "./accounts.js";

const signOutButton = document.getElementById("sign-out");

function signInScreen() {
  signOutButton.hidden = true;
  show("Sign in",
    h("p", {}, "With your mail address and password. They are kept in this tab only."),
    form("Sign in", [
      field("Address", "address", "email", { required: true, autocomplete: "username" }),
      field("Password", "password", "password", { required: true, autocomplete: "current-password" }),
    ], "Sign in", async ({ address, password }) => {
      // Basic credentials are UTF-8 (RFC 7617): encoded byte by byte before base64.
      const bytes = new TextEncoder().encode(`${address.trim()}:${password}`);
      signIn(`Basic ${btoa(String.fromCharCode(...bytes))}`);
      try {
        await call("GET", "/self/pushed-folders");
      } catch (failure) {
        signOut();
        throw failure;
      }
      say("Signed in.");
      start();
    }));
}

async function ownScreen() {
  signOutButton.hidden = false;
  const [folders, pushed, rules, link] = await Promise.all([
    call("GET", "/self/folders"),
    call("GET", "/self/pushed-folders"),
    call("GET", "/self/rules"),
    call("GET", "/self/integration").catch((failure) => {
      if (failure.status === 404) return null;
      throw failure;
    }),
  ]);
  show("Your push mail",
    h("section", { "aria-labelledby": "link-title" },
      h("h3", { id: "link-title" }, "Your device"),
      link
        ? table("Your device link", ["Device", "Since", "Last notice delivered", "Notices pending"], [[
          [link.device?.model, link.device?.pin && `PIN ${link.device.pin}`].filter(Boolean).join(", ") || "—",
          when(link.linked_at), when(link.notices.last_delivered_at), link.notices.pending]])
        : h("p", {}, "No device is linked to this account.")),
    pushedFolders("/self", folders.items.map((folder) => folder.name), pushed.folders,
      (chosen) => call("PUT", "/self/pushed-folders", { folders: chosen })),
    rulesEditor(rules.rules, async (edited) => (await call("PUT", "/self/rules", { rules: edited })).rules));
}

function start() {
  if (!signedIn()) return signInScreen();
  ownScreen().catch((failure) => {
    if (failure.status === 401) return failed(failure);
    show("Not shown", h("p", { class: "error", role: "alert" }, failure.message));
  });
}

signOutButton.addEventListener("click", () => {
  signOut();
  say("Signed out.");
  start();
});
window.addEventListener("hashchange", start);
start();

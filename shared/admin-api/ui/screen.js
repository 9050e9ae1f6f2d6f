// What every screen of the console and the user page uses: showing a screen, links between
// screens, a confirmation, paged listings, and failures.

import { signOut } from "./api.js";
import { h, say, table } from "./dom.js";

const main = document.getElementById("main");

/** Shows a screen under its heading; the heading takes focus, so a reader hears where it is. */
export function show(title, ...content) {
  const heading = h("h2", { tabindex: "-1" }, title);
  main.replaceChildren(heading, ...content.flat().filter((part) => part !== null && part !== undefined && part !== false));
  document.title = `${title} · pushmail`;
  heading.focus();
}

/** Goes to a screen (the hash is the route, so Back and bookmarks work). */
export function go(route) {
  location.hash = `#/${route}`;
}

/** A link to a screen. */
export function link(text, route) {
  return h("a", { href: `#/${route}` }, text);
}

/** Asks once before something that cannot be undone; `what` names what is lost. */
export function confirmed(what) {
  return window.confirm(what);
}

/** A page of a listing with Next and First: `load(cursor)` answers the API's page. */
export function paged(caption, headers, load, row) {
  const holder = h("div", {});
  const trail = [];
  async function open(cursor) {
    const page = await load(cursor);
    const next = h("button", {
      type: "button",
      hidden: !page.cursor,
      onclick: () => { trail.push(cursor); open(page.cursor).catch(failed); },
    }, "Next page");
    const first = h("button", {
      type: "button",
      hidden: trail.length === 0,
      onclick: () => { trail.length = 0; open(undefined).catch(failed); },
    }, "First page");
    holder.replaceChildren(table(caption, headers, page.items.map(row)), h("div", { class: "actions" }, first, next));
  }
  open(undefined).catch(failed);
  return holder;
}

/** The query string for a page: its cursor, if any. */
export function pageQuery(cursor, extra = "") {
  const query = new URLSearchParams(extra);
  if (cursor) query.set("cursor", cursor);
  const text = query.toString();
  return text ? `?${text}` : "";
}

/** An API failure on a screen: said and shown; credentials no longer taken go back to
 *  signing in. */
export function failed(failure) {
  if (failure.status === 401) {
    signOut();
    window.dispatchEvent(new HashChangeEvent("hashchange"));
    say("Your credentials were not accepted; sign in again.");
    return;
  }
  main.append(h("p", { class: "error", role: "alert" }, failure.message));
}


// The skip link moves focus to the content; followed as a link, its `#main` would be read as a
// route.
document.querySelector(".skip")?.addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

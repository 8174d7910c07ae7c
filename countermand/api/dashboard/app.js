// The dashboard: log in once (the key is exchanged for an HttpOnly session cookie and dropped),
// then pages by the URL's hash, so moving around never reloads the page.

import { onUnauthorized, request, setCsrf } from "./api.js";
import { h } from "./dom.js";
import { jobPage } from "./job.js";
import { jobsPage } from "./jobs.js";
import { policiesPage } from "./policies.js";
import { submitPage } from "./submit.js";
import { tenantsPage } from "./tenants.js";

const ROUTES = [
  [/^#\/jobs\/([0-9a-f]{16})$/, jobPage, "jobs"],
  [/^#\/submit$/, submitPage, "submit"],
  [/^#\/tenants$/, tenantsPage, "tenants"],
  [/^#\/policies$/, policiesPage, "policies"],
  [/^(?:#\/?(?:jobs)?)?$/, jobsPage, "jobs"],
];

const view = document.querySelector("#view");
const topbar = document.querySelector("[data-testid=topbar]");
const login = document.querySelector("[data-testid=login]");
const loginForm = document.querySelector("[data-testid=login-form]");
const loginError = document.querySelector("[data-testid=login-error]");
let session = null; // {name, role, orgs}: never the key
let leave = null; // the page's cleanup (closes its event stream, stops its timers)

function route() {
  if (!session) return;
  leave?.();
  leave = null;
  view.replaceChildren();
  document.title = "Countermand";
  const found = ROUTES.find(([pattern]) => pattern.test(location.hash));
  if (!found) {
    view.append(h("p", { class: "error" }, `No page at ${location.hash}.`),
      h("a", { href: "#/jobs" }, "Jobs"));
    return;
  }
  const [pattern, page, section] = found;
  for (const link of topbar.querySelectorAll("nav a")) {
    link.toggleAttribute("aria-current", link.dataset.route === section);
  }
  const ctx = { session, canAct: session.role === "operator" };
  leave = page(view, ctx, ...location.hash.match(pattern).slice(1)) ?? null;
}

function signedIn(found) {
  setCsrf(found.csrf);
  session = { name: found.name, role: found.role, orgs: found.orgs };
  const orgs = found.orgs ? `, orgs ${found.orgs.join(", ")}` : "";
  topbar.querySelector("[data-testid=who]").textContent = `${found.name} (${found.role}${orgs})`;
  topbar.querySelector("[data-testid=nav-submit]").hidden = found.role !== "operator";
  topbar.hidden = false;
  login.hidden = true;
  route();
}

function signedOut(message = "") {
  leave?.();
  leave = null;
  session = null;
  setCsrf(null);
  view.replaceChildren();
  topbar.hidden = true;
  login.hidden = false;
  loginError.textContent = message;
  loginForm.elements.key.focus();
}

loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const field = loginForm.elements.key;
  loginError.textContent = "";
  try {
    const found = await request("POST", "/session", { json: { key: field.value.trim() } });
    field.value = ""; // the key is gone: the session cookie (HttpOnly) stands for it now
    signedIn(found);
  } catch (error) {
    loginError.textContent = error.message;
  }
});

topbar.querySelector("[data-testid=logout]").addEventListener("click", async () => {
  await request("DELETE", "/session").catch(() => {});
  signedOut();
});

onUnauthorized(() => signedOut("The session ended: log in again."));
window.addEventListener("hashchange", route);

request("GET", "/session").then(signedIn,
  (error) => signedOut(error.status === 401 ? "" : error.message));

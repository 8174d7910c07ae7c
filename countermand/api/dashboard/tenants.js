// Every tenant the limiter has seen: its limit, effective rate, 429 hold and recent 429s.

import { get } from "./api.js";
import { duration, failure, h, now, num, rate, table, when } from "./dom.js";

const REFRESH_MS = 3000;

function row(tenant) {
  const hold = tenant.hold_until
    ? `${when(tenant.hold_until)} (${duration(tenant.hold_until - now())})` : "–";
  const throttled = tenant.throttled_last_minute;
  return h("tr", { testid: "tenant-row" },
    h("td", {}, tenant.tenant),
    h("td", { class: "n" }, rate(tenant.limit)),
    h("td", { class: "n" }, rate(tenant.effective_rate)),
    h("td", {}, hold),
    h("td", { class: throttled ? "n warn" : "n" }, num(throttled)));
}

export function tenantsPage(view) {
  const { el: list, body } = table(
    ["tenant", "limit", "effective rate", "hold until", "429s in the last minute"],
    { testid: "tenants-table" });
  const note = h("div", { class: "muted" });
  view.append(
    h("h1", {}, "Tenants"),
    h("p", { class: "muted" }, "One rate limit per API tenant (vendor and org), across every "
      + "worker: lowered after 429s, held while a 429's Retry-After lasts."),
    h("section", { class: "card scroll" }, list, note));

  async function load() {
    try {
      const tenants = await get("/v1/tenants");
      body.replaceChildren(...tenants.map(row));
      note.textContent = tenants.length ? "" : "No tenant has been seen yet.";
    } catch (error) {
      failure(note, error);
    }
  }

  load();
  const timer = setInterval(load, REFRESH_MS);
  return () => clearInterval(timer);
}

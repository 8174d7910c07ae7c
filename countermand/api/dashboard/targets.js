// A job's targets: the most frequent error codes, and a search for one target.

import { get } from "./api.js";
import { h, num, table } from "./dom.js";

const TOP = 8;
const PAGE = 500; // targets read per outcome for the tally (the API's largest page)

// failed and rejected targets counted by error_code (an HTTP status when there is no code).
export async function errorCodes(jobId) {
  const pages = await Promise.all(["failed", "rejected"].map((outcome) =>
    get(`/v1/jobs/${jobId}/targets`, { outcome, limit: PAGE })));
  const tally = new Map();
  for (const target of pages.flatMap((p) => p.targets)) {
    const code = target.error_code
      ?? (target.http_status ? `HTTP ${target.http_status}` : "(no code)");
    const entry = tally.get(code)
      ?? { count: 0, outcome: target.outcome, message: target.error_message };
    entry.count += 1;
    tally.set(code, entry);
  }
  const { el, body } = table(["error code", "targets", "outcome", "example message"]);
  const top = [...tally].sort((a, b) => b[1].count - a[1].count).slice(0, TOP);
  for (const [code, entry] of top) {
    body.append(h("tr", { testid: "error-code" },
      h("td", {}, h("code", {}, code)),
      h("td", { class: "n" }, num(entry.count)),
      h("td", {}, entry.outcome),
      h("td", { class: "message" }, entry.message ?? "")));
  }
  const partial = pages.some((p) => p.next_cursor !== null);
  return partial ? [el, h("p", { class: "muted small" }, `From the first ${PAGE} of each.`)] : [el];
}

function record(target) {
  return h("dl", { class: "record", testid: "target-row" },
    Object.entries(target).map(([name, value]) =>
      h("div", {}, h("dt", {}, name), h("dd", {}, value === "" ? "–" : value ?? "–"))));
}

// A search box; each target found is shown with every field of its report row.
export function targetSearch(jobId) {
  const input = h("input", { type: "search", name: "q", testid: "target-search",
    placeholder: "device, serial or command id" });
  const results = h("div", { testid: "target-results" });

  async function find(event) {
    event.preventDefault();
    const q = input.value.trim();
    if (!q) return;
    try {
      const { targets } = await get(`/v1/jobs/${jobId}/targets`, { q, limit: 20 });
      results.replaceChildren(...targets.map(record));
      if (!targets.length) {
        results.append(h("p", { class: "muted", testid: "target-none" }, `No target has "${q}".`));
      }
    } catch (error) {
      results.replaceChildren(h("p", { class: "error" }, error.message));
    }
  }

  return [
    h("form", { class: "inline", onsubmit: find }, input,
      h("button", { type: "submit", testid: "target-search-submit" }, "Search")),
    results,
  ];
}

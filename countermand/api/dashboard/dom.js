// DOM building and formatting. Server data (job names, vendor messages, org names) always goes
// in as text nodes or attribute values, never as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

// Outcomes in the order the README lists them, then the targets not final yet.
export const OUTCOMES = [
  "canceled", "cancel_requested", "not_pending", "nothing_pending", "not_found", "rejected",
  "failed", "invalid", "would_cancel", "pending", "done", "errored", "remaining",
];

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "testid") el.dataset.testid = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  const kept = children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false);
  el.append(...kept.map((c) => (c instanceof Node ? c : String(c))));
  return el;
}

// h("a", {href, testid, onclick}, "text", child...): an HTML element.
export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
// s("rect", {...}): an SVG element.
export const s = (tag, attrs, ...children) =>
  build(document.createElementNS(SVG_NS, tag), attrs, children);

export function field(label, control, hint) {
  return h("label", { class: "field" }, h("span", {}, label), control,
    hint ? h("small", { class: "muted" }, hint) : null);
}

export function table(headers, attrs = {}) {
  const body = h("tbody");
  const head = h("thead", {}, h("tr", {}, headers.map((name) => h("th", {}, name))));
  const el = h("table", attrs, head, body);
  return { el, body };
}

export function badge(status, testid) {
  return h("span", { class: `badge s-${status}`, testid }, status);
}

export function jobLink(job, testid) {
  return h("a", { href: `#/jobs/${encodeURIComponent(job.job_id)}`, testid },
    job.name || job.job_id);
}

export function failure(where, error) {
  where.replaceChildren(h("p", { class: "error", role: "alert" }, error.message));
}

export const num = (n) => (n ?? 0).toLocaleString("en");
export const done = (job) => job.total - (job.counts.remaining ?? 0);
export const now = () => Date.now() / 1000;

export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

const two = (n) => String(n).padStart(2, "0");

// Local time, YYYY-MM-DD HH:MM:SS (unix seconds in).
export function when(unix) {
  if (unix === null || unix === undefined) return "–";
  const d = new Date(unix * 1000);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} `
    + `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

export function rate(value) {
  return value === null || value === undefined ? "–" : `${+value.toFixed(2)}/s`;
}

// "canceled 140 · not_pending 10": the non-zero final outcomes.
export function countsText(counts) {
  const parts = OUTCOMES.filter((o) => o !== "remaining" && counts[o] > 0)
    .map((o) => `${o} ${num(counts[o])}`);
  return parts.join(" · ") || "–";
}

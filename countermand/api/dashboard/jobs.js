// The jobs list, newest first, a page at a time, refreshed every few seconds.

import { get, startedBy } from "./api.js";
import {
  badge, countsText, done, duration, failure, h, jobLink, now, num, rate, table, when,
} from "./dom.js";

const PAGE = 20;
const REFRESH_MS = 5000;

function row(job) {
  const who = h("td", { testid: "job-actor" }, "…");
  startedBy(job.job_id).then((name) => { who.textContent = name; }, () => {});
  const tags = [job.kind === "poll" ? "poll" : null, job.dry_run ? "dry run" : null]
    .filter(Boolean).map((tag) => h("span", { class: "tag" }, tag));
  return h("tr", { testid: "job-row", "data-job-id": job.job_id },
    h("td", {}, jobLink(job, "job-link"),
      h("div", { class: "muted small" }, `${job.job_id} · ${job.provider} · ${job.org}`)),
    h("td", {}, badge(job.status, "job-row-status"), tags),
    h("td", {}, h("progress", { max: Math.max(1, job.total), value: done(job) }),
      h("div", { class: "small" }, `${num(done(job))} / ${num(job.total)}`)),
    h("td", { class: "small" }, countsText(job.counts)),
    h("td", { class: "n" }, rate(job.rate)),
    h("td", { class: "n", title: when(job.created_at) }, duration(now() - job.created_at)),
    who);
}

export function jobsPage(view, ctx) {
  const cursors = [null]; // the cursor of every page up to the one shown
  let asked = 0; // answers to older requests are dropped
  const { el: list, body } = table(
    ["job", "status", "progress", "counts", "rate", "age", "started by"],
    { class: "jobs", testid: "jobs-table" });
  const note = h("div", { class: "muted" });
  const newer = h("button", { type: "button", class: "quiet", testid: "jobs-newer",
    onclick: () => { cursors.pop(); load(); } }, "← Newer");
  const older = h("button", { type: "button", class: "quiet", testid: "jobs-older" }, "Older →");
  const submit = ctx.canAct
    ? h("a", { href: "#/submit", class: "button", testid: "jobs-submit" }, "Submit a job") : null;
  view.append(
    h("div", { class: "heading" }, h("h1", {}, "Jobs"), submit),
    h("section", { class: "card scroll" }, list, note, h("div", { class: "pager" }, newer, older)));

  async function load() {
    const mine = ++asked;
    try {
      const page = await get("/v1/jobs", { limit: PAGE, cursor: cursors.at(-1) });
      if (mine !== asked) return;
      body.replaceChildren(...page.jobs.map(row));
      note.textContent = page.jobs.length ? "" : "No jobs yet.";
      newer.disabled = cursors.length === 1;
      older.disabled = !page.next_cursor;
      older.onclick = () => { cursors.push(page.next_cursor); load(); };
    } catch (error) {
      failure(note, error);
    }
  }

  load();
  const timer = setInterval(load, REFRESH_MS);
  return () => clearInterval(timer);
}

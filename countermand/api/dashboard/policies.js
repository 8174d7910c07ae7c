// The stale-cleanup policies: schedule, next run, last scheduled job, problems of the file,
// and "run now (dry run)".

import { get, post } from "./api.js";
import { badge, duration, failure, h, jobLink, now, table, when } from "./dom.js";

function lastJob(job) {
  if (!job) return "–";
  const started = h("div", { class: "muted small" }, when(job.created_at));
  return [jobLink(job), " ", badge(job.status), started];
}

function nextRun(at) {
  if (!at) return "not scheduled";
  return [when(at), h("div", { class: "muted small" }, `in ${duration(at - now())}`)];
}

export function policiesPage(view, ctx) {
  const headers = ["policy", "provider", "org", "older than", "schedule (UTC)", "next run",
    "last scheduled run"];
  const { el: list, body } = table(ctx.canAct ? [...headers, ""] : headers,
    { testid: "policies-table" });
  const note = h("div", { class: "muted" });
  const result = h("div", { testid: "policy-run-result", role: "status" });
  const problems = h("div", { testid: "policy-problems" });
  view.append(
    h("h1", {}, "Cleanup policies"),
    h("section", { class: "card scroll" }, list, note, result),
    h("section", { class: "card" }, h("h2", {}, "Problems in the policies file"), problems));

  function row(policy) {
    const run = h("button", { type: "button", testid: "policy-run",
      onclick: () => runNow(policy.name, run) }, "Run now (dry run)");
    return h("tr", { testid: "policy-row", "data-policy": policy.name },
      h("td", {}, policy.name, policy.dry_run ? h("span", { class: "tag" }, "dry run") : null,
        policy.command ? h("div", { class: "muted small" }, `command ${policy.command}`) : null),
      h("td", {}, policy.provider),
      h("td", {}, policy.org),
      h("td", {}, policy.older_than),
      h("td", {}, policy.schedule ? h("code", {}, policy.schedule) : "–"),
      h("td", { testid: "policy-next-run" }, nextRun(policy.next_run_at)),
      h("td", { testid: "policy-last-job" }, lastJob(policy.last_job)),
      ctx.canAct ? h("td", {}, run) : null);
  }

  async function runNow(name, button) {
    button.disabled = true;
    result.replaceChildren(h("span", { class: "muted" }, `Running ${name} (discovery first)…`));
    try {
      const job = await post(`/v1/policies/${encodeURIComponent(name)}/run`, { dry_run: true });
      result.replaceChildren("Started the dry-run job ", jobLink(job, "policy-run-job"),
        ` for ${name}.`);
      await load();
    } catch (error) {
      failure(result, error);
    } finally {
      button.disabled = false;
    }
  }

  async function load() {
    try {
      const found = await get("/v1/policies");
      body.replaceChildren(...found.policies.map(row));
      note.textContent = found.policies.length ? "" : "No policies (COUNTERMAND_POLICIES_FILE).";
      problems.replaceChildren(found.problems.length
        ? h("ul", {}, found.problems.map((p) => h("li", { testid: "policy-problem" }, p)))
        : h("p", { class: "muted" }, "None."));
    } catch (error) {
      failure(note, error);
    }
  }

  load();
}

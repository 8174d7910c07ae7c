// The submit form. A cancel job is checked first: the file goes as a dry run (a job the workers
// run: validation, would_cancel), its counts are shown, then "submit for real" sends the same
// file. A poll changes nothing and starts at once.

import { freshKey, post, url } from "./api.js";
import { done, field, h, jobLink, num } from "./dom.js";

const PROVIDERS = {
  cancel: ["applivery-apple", "applivery-android", "enos"],
  poll: ["applivery-apple", "applivery-android", "applivery-windows", "enos"],
};

const typeOf = (file) =>
  (/\.(jsonl|ndjson)$/i.test(file.name) ? "application/x-ndjson" : "text/csv");

function count(label, testid) {
  const value = h("strong", { testid });
  return [value, h("div", { class: "count" }, value, h("span", {}, label))];
}

export function submitPage(view, ctx) {
  view.append(h("h1", {}, "Submit a job"));
  if (!ctx.canAct) {
    view.append(h("p", { class: "muted", testid: "submit-refused" },
      "A viewer key may not submit jobs."));
    return null;
  }
  const input = (name, attrs) => h("input", { name, testid: `submit-${name}`, ...attrs });
  const file = input("file", { type: "file", required: true, accept: ".csv,.jsonl,.ndjson" });
  const kind = h("select", { name: "kind", testid: "submit-kind" },
    h("option", { value: "cancel" }, "cancel pending commands"),
    h("option", { value: "poll" }, "poll: read states, change nothing"));
  const provider = h("select", { name: "provider", testid: "submit-provider" });
  const org = input("org", { required: true, autocomplete: "off", placeholder: "acme-corp" });
  const name = input("name", { maxlength: 200, placeholder: "optional" });
  const speed = input("rate", { type: "number", min: "0.1", step: "any", placeholder: "default" });
  const priority = h("select", { name: "priority", testid: "submit-priority" },
    h("option", { value: "normal" }, "normal"),
    h("option", { value: "urgent" }, "urgent: all of the tenant's rate but 5%"),
    h("option", { value: "bulk" }, "bulk: a fifth of what normal jobs leave"));
  const verify = input("verify", { type: "checkbox" });
  const dryOnly = input("dry-run", { type: "checkbox" });
  const go = h("button", { type: "submit", testid: "submit-check" });
  const error = h("p", { class: "error", role: "alert", testid: "submit-error" });
  const preview = h("section", { class: "card", testid: "dry-run", hidden: true });
  let checked = null; // what the dry run checked: the file, provider, org
  let stream = null; // the dry run's events

  view.append(h("form", { class: "card form", testid: "submit-form", onsubmit: check },
    field("Input file", file, "CSV with a header row, or JSON Lines (.jsonl, .ndjson)"),
    field("Kind", kind), field("Provider", provider), field("Org", org), field("Name", name),
    field("Rate (requests/s)", speed), field("Priority", priority),
    h("label", { class: "check" }, verify, "verify: read canceled targets back"),
    h("label", { class: "check" }, dryOnly, "dry run only: validate, send nothing"),
    h("div", {}, go), error), preview);

  function params() {
    return { provider: provider.value, org: org.value.trim(), name: name.value.trim(),
      rate: speed.value, priority: priority.value };
  }

  function changeKind() {
    const providers = PROVIDERS[kind.value];
    const current = provider.value;
    provider.replaceChildren(...providers.map((p) => h("option", { value: p }, p)));
    if (providers.includes(current)) provider.value = current;
    verify.disabled = dryOnly.disabled = kind.value === "poll";
    go.textContent = kind.value === "poll" ? "Start poll" : "Check (dry run)";
    forget();
  }

  function forget() {
    stream?.close();
    stream = null;
    checked = null;
    preview.hidden = true;
  }

  async function send(path, query, body, headers = {}) {
    error.textContent = "";
    go.disabled = true;
    try {
      return await post(path, query, { body, type: typeOf(body), headers });
    } catch (problem) {
      error.textContent = problem.message; // the problem's detail: what and where
      return null;
    } finally {
      go.disabled = false;
    }
  }

  async function check(event) {
    event.preventDefault();
    const chosen = file.files[0];
    if (kind.value === "poll") {
      const job = await send("/v1/polls", params(), chosen);
      if (job) location.hash = `#/jobs/${job.job_id}`;
      return;
    }
    forget();
    const job = await send("/v1/jobs", { ...params(), dry_run: true }, chosen);
    if (!job) return;
    // One Idempotency-Key per check: pressing "submit for real" twice makes one job.
    checked = { file: chosen, provider: provider.value, org: org.value.trim(), key: freshKey() };
    showDryRun(job);
  }

  function showDryRun(job) {
    const [total, totalBox] = count("rows", "dry-total");
    const [would, wouldBox] = count("would cancel", "dry-would-cancel");
    const [invalid, invalidBox] = count("invalid", "dry-invalid");
    const state = h("span", { class: "muted small", testid: "dry-run-state" });
    const real = h("button", { type: "button", testid: "submit-real", disabled: true,
      onclick: () => submitReal(real) }, "Submit for real");
    preview.replaceChildren(
      h("h2", {}, `Dry run of ${checked.file.name} `, state),
      h("div", { class: "counts" }, totalBox, wouldBox, invalidBox),
      h("p", {}, "The dry run is a job of its own: ", jobLink(job, "dry-run-job"),
        " (its report says why each invalid row was refused)."),
      dryOnly.checked ? h("p", { class: "muted" }, "Dry run only: nothing is sent.")
        : h("p", {}, real, ` sends the same file to ${checked.provider} for org ${checked.org}.`));
    preview.hidden = false;
    const fill = (seen, ended) => {
      total.textContent = num(seen.total);
      would.textContent = num(seen.counts.would_cancel);
      invalid.textContent = num(seen.counts.invalid);
      const finished = ended && seen.status === "completed";
      state.textContent = finished ? "" : ended ? seen.status
        : `checking… ${num(done(seen))} / ${num(seen.total)}`;
      real.disabled = !finished || seen.counts.would_cancel === 0;
    };
    fill(job, false);
    stream = new EventSource(url(`/v1/jobs/${job.job_id}/events`));
    stream.addEventListener("progress", (event) => fill(JSON.parse(event.data), false));
    stream.addEventListener("end", (event) => {
      stream.close();
      fill(JSON.parse(event.data), true);
    });
  }

  async function submitReal(button) {
    button.disabled = true;
    const query = { ...params(), provider: checked.provider, org: checked.org,
      verify: verify.checked || null };
    const job = await send("/v1/jobs", query, checked.file, { "Idempotency-Key": checked.key });
    if (job) location.hash = `#/jobs/${job.job_id}`;
    else button.disabled = false;
  }

  kind.addEventListener("change", changeKind);
  for (const changed of [file, provider, org]) changed.addEventListener("input", forget);
  changeKind();
  return () => stream?.close();
}

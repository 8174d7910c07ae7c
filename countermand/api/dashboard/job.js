// One job, live: its status object through server-sent events (no reload), the outcome chart,
// throughput and 429s over time, error codes, a target search, controls and reports.

import { get, post, startedBy, url } from "./api.js";
import { lineChart, outcomeBars } from "./charts.js";
import { badge, done, duration, failure, h, now, num, rate, when } from "./dom.js";
import { errorCodes, targetSearch } from "./targets.js";

const SETTLED = new Set(["completed", "paused", "aborted"]);
const SPAN_S = 120; // the throughput chart shows the last two minutes
const RATE_OVER_S = 2; // finished/s over at least this long: targets finish in batches
const TENANT_EVERY_MS = 2000;
const ERRORS_EVERY_MS = 3000;

// What each control needs of the job (the API answers 409 otherwise).
const ACTIONS = {
  pause: (job) => job.status === "queued" || job.status === "running",
  resume: (job) => job.status === "paused",
  abort: (job) => ["queued", "running", "paused"].includes(job.status),
  retry: (job) => job.status === "completed" && job.counts.failed > 0,
};

// Targets finished per second: the change of done (total - remaining) over RATE_OVER_S.
function finishedPerSecond(samples) {
  const points = [];
  let j = 0;
  for (let i = 1; i < samples.length; i++) {
    while (j + 1 < i && samples[i][0] - samples[j + 1][0] >= RATE_OVER_S) j++;
    const [[t, value], [t0, value0]] = [samples[i], samples[j]];
    if (t > t0) points.push([t, (value - value0) / (t - t0)]);
  }
  return points;
}

// 429s per second: the increase of the tenant's "429s in the last minute" between two reads
// (a sliding window, so this is a lower bound while older 429s age out).
function throttledPerSecond(samples) {
  return samples.slice(1).map(([t, value], i) => {
    const [t0, value0] = samples[i];
    return [t, Math.max(0, value - value0) / Math.max(t - t0, 0.001)];
  });
}

function keepRecent(samples) {
  while (samples.length && samples[0][0] < now() - SPAN_S - RATE_OVER_S) samples.shift();
}

function fact(name, value) {
  return h("div", {}, h("dt", {}, name), h("dd", {}, value));
}

export function jobPage(view, ctx, jobId) {
  let job = null;
  let source = null; // the EventSource while the job is followed
  let tenantTimer = null;
  let busy = false; // an action is on its way
  const finished = []; // [unix s, targets done]
  const throttled = []; // [unix s, the tenant's 429s in the last minute]
  const errors = { seen: null, at: 0 };
  const actor = { name: "…", asking: false, at: 0 }; // the submit entry is written once loaded

  const el = {
    title: h("h1", { testid: "job-title" }, jobId),
    status: h("span", { testid: "job-status" }),
    reason: h("span", { class: "muted", testid: "job-reason" }),
    live: h("span", { class: "muted small", testid: "job-live" }),
    progress: h("progress", { max: 1, value: 0, testid: "job-progress" }),
    progressText: h("span", { testid: "job-progress-text" }),
    facts: h("dl", { class: "facts", testid: "job-facts" }),
    outcomes: h("div", { testid: "outcome-chart" }),
    rates: h("div", { testid: "rate-chart" }),
    tenant: h("p", { class: "muted", testid: "job-tenant" }),
    errors: h("div", { class: "scroll", testid: "error-codes" }),
    actionError: h("p", { class: "error", role: "alert", testid: "action-error" }),
  };
  const buttons = {};
  for (const name of Object.keys(ACTIONS)) {
    buttons[name] = h("button", { type: "button", testid: `action-${name}`,
      onclick: () => act(name) }, name);
  }
  const report = (format, label) => h("a", { class: "button quiet", download: "",
    href: url(`/v1/jobs/${jobId}/report`, { format }), testid: `report-${format}` }, label);
  const card = (title, ...body) => h("section", { class: "card" }, h("h2", {}, title), body);

  view.append(
    h("div", { class: "heading" }, el.title, el.status, el.reason, el.live),
    h("section", { class: "card" },
      h("div", { class: "progress" }, el.progress, el.progressText),
      el.facts,
      h("div", { class: "row" },
        ctx.canAct ? h("div", { class: "actions", testid: "actions" }, Object.values(buttons))
          : null,
        h("div", { class: "downloads" }, "Report:", report("csv", "CSV"),
          report("jsonl", "JSON Lines"))),
      el.actionError),
    h("div", { class: "grid" },
      card("Outcomes", el.outcomes),
      card("Throughput",
        h("p", { class: "legend" }, h("i", { class: "key finished" }), "targets finished/s",
          h("i", { class: "key throttled" }), "429s/s (the job's tenant)"),
        el.rates, el.tenant),
      card("Most frequent error codes", el.errors),
      card("Find a target", targetSearch(jobId))),
  );

  function update(next) {
    job = next;
    finished.push([now(), done(job)]);
    keepRecent(finished);
    show();
    followTenant();
    refreshErrors(false);
  }

  function show() {
    document.title = `${job.name || job.job_id}: ${job.status} · Countermand`;
    el.title.textContent = job.name || `Job ${job.job_id}`;
    el.status.replaceChildren(badge(job.status));
    el.reason.textContent = [job.reason, job.reason_detail].filter(Boolean).join(": ");
    const count = done(job);
    const pct = job.total ? Math.floor((100 * count) / job.total) : 100;
    el.progress.max = Math.max(1, job.total);
    el.progress.value = count;
    el.progressText.textContent = `${num(count)} / ${num(job.total)} (${pct}%)`
      + (job.loaded ? "" : ", loading");
    el.facts.replaceChildren(
      fact("id", job.job_id),
      fact("kind", job.dry_run ? `${job.kind} (dry run)` : job.kind),
      fact("provider", job.provider),
      fact("org", job.org),
      fact("rate", rate(job.rate)),
      fact("priority", job.priority),
      fact("share granted now", job.share == null ? "not asking" : rate(job.share)),
      fact("limited by", limitedBy(job)),
      fact("tenant's effective rate", rate(job.limiter?.effective_rate)),
      fact("created", when(job.created_at)),
      fact("finished", when(job.finished_at)),
      fact("retry rounds", `${job.round} (auto: up to ${job.auto_retry})`),
      fact("undecided", num(job.undecided)),
      fact("started by", actor.name),
    );
    for (const [name, allowed] of Object.entries(ACTIONS)) {
      buttons[name].disabled = busy || !allowed(job);
    }
    el.outcomes.replaceChildren(outcomeBars(job.counts));
    drawRates();
    if (actor.name === "…" && !actor.asking && Date.now() - actor.at > 5000) lookUpActor();
  }

  async function lookUpActor() {
    Object.assign(actor, { asking: true, at: Date.now() });
    actor.name = await startedBy(jobId).catch(() => "…");
    actor.asking = false;
    if (actor.name !== "…") show();
  }

  function drawRates() {
    el.rates.replaceChildren(lineChart([
      { name: "targets finished/s", cls: "finished", points: finishedPerSecond(finished) },
      { name: "429s/s", cls: "throttled", points: throttledPerSecond(throttled) },
    ], SPAN_S));
  }

  function follow() {
    source?.close();
    source = new EventSource(url(`/v1/jobs/${jobId}/events`));
    el.live.textContent = "● live";
    source.addEventListener("progress", (event) => update(JSON.parse(event.data)));
    source.addEventListener("end", (event) => {
      stop();
      update(JSON.parse(event.data));
      refreshErrors(true);
    });
    source.addEventListener("error", () => {
      if (source?.readyState !== EventSource.CLOSED) {
        el.live.textContent = "reconnecting…"; // EventSource tries again by itself
        return;
      }
      stop(); // refused (401, 404): an ordinary read says why
      get(`/v1/jobs/${jobId}`).then(update, (error) => {
        el.actionError.textContent = error.message;
      });
    });
  }

  function stop() {
    source?.close();
    source = null;
    el.live.textContent = "";
  }

  function followTenant() {
    const wanted = job.limiter?.tenant && !SETTLED.has(job.status);
    if (wanted && !tenantTimer) {
      sampleTenant();
      tenantTimer = setInterval(sampleTenant, TENANT_EVERY_MS);
    } else if (!wanted && tenantTimer) {
      clearInterval(tenantTimer);
      tenantTimer = null;
    }
  }

  async function sampleTenant() {
    const name = job.limiter?.tenant;
    const tenants = await get("/v1/tenants").catch(() => []);
    const seen = tenants.find((t) => t.tenant === name);
    if (!seen) return;
    throttled.push([now(), seen.throttled_last_minute]);
    keepRecent(throttled);
    const hold = seen.hold_until ? `, holding for ${duration(seen.hold_until - now())}` : "";
    el.tenant.textContent = `${name}: limit ${rate(seen.limit)}, `
      + `effective ${rate(seen.effective_rate)}, `
      + `${num(seen.throttled_last_minute)} 429s in the last minute${hold}`;
    drawRates();
  }

  // Read again when the number of failed and rejected targets changes (at most every 3 s).
  async function refreshErrors(force) {
    const count = job.counts.failed + job.counts.rejected;
    const fresh = count === errors.seen || Date.now() - errors.at < ERRORS_EVERY_MS;
    if (fresh && !force) return;
    Object.assign(errors, { seen: count, at: Date.now() });
    try {
      el.errors.replaceChildren(...(count ? await errorCodes(jobId)
        : [h("p", { class: "muted" }, "No failed or rejected targets.")]));
    } catch (error) {
      failure(el.errors, error);
    }
  }

  async function act(name) {
    if (name === "abort" && !confirm("Abort this job? Targets not yet tried stay remaining.")) {
      return;
    }
    busy = true;
    el.actionError.textContent = "";
    show();
    try {
      const next = await post(`/v1/jobs/${jobId}/${name}`);
      busy = false;
      update(next);
      if (!SETTLED.has(next.status)) follow(); // resume and retry: a new stream
    } catch (error) {
      busy = false;
      show();
      el.actionError.textContent = error.message;
    }
  }

  get(`/v1/jobs/${jobId}`).then((first) => {
    update(first);
    follow();
  }, (error) => failure(view, error));

  return () => {
    stop();
    clearInterval(tenantTimer);
  };
}

// What holds a running job below its --rate, in words (the status object's limited_by).
function limitedBy(job) {
  switch (job.limited_by) {
    case "job_rate": return "its own rate";
    case "tenant_share": return "its share of the tenant's rate";
    case "hold": return "the tenant's 429 hold";
    case "in_flight_ceiling":
      return `the in-flight ceiling: ${rate(job.allowed_rate)} at the vendor's latency`;
    default: return "nothing now";
  }
}

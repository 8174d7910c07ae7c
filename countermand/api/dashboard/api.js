// The one way the dashboard talks to the API. Reads go with the session cookie alone; requests
// that change something also carry the session's CSRF token. Errors are problem+json: the
// server's `detail` becomes the message of an ApiError.

let csrf = null;
let unauthorized = () => {};

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export function setCsrf(token) {
  csrf = token;
}

// Called on a 401 from any route but /session itself (the session ended or the key was revoked).
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export function url(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") query.set(name, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

export async function request(method, path, { params, json, body, type, headers } = {}) {
  const sent = { Accept: "application/json", ...headers };
  if (method !== "GET" && csrf) sent["X-CSRF-Token"] = csrf;
  if (json !== undefined) {
    body = JSON.stringify(json);
    type = "application/json";
  }
  if (type) sent["Content-Type"] = type;
  const answer = await fetch(url(path, params), {
    method, headers: sent, body, credentials: "same-origin", cache: "no-store",
  });
  const data = answer.status === 204 ? null : await answer.json().catch(() => null);
  if (answer.ok) return data;
  if (answer.status === 401 && path !== "/session") unauthorized();
  throw new ApiError(answer.status, data?.detail ?? `${answer.status} ${answer.statusText}`);
}

export const get = (path, params) => request("GET", path, { params });
export const post = (path, params, options = {}) => request("POST", path, { params, ...options });

// Who started a job: the actor of its `submit` audit entry (a policy run's entry while a
// cleanup job is still discovering). Looked up once per job, only for the jobs on screen.
const actors = new Map();

export async function startedBy(jobId) {
  if (actors.has(jobId)) return actors.get(jobId);
  const { entries } = await get("/v1/audit", { job: jobId, limit: 1000 });
  const entry = entries.find((e) => e.action === "submit")
    ?? entries.find((e) => e.action === "policy_run");
  if (entry) actors.set(jobId, entry.actor);
  return entry?.actor ?? "…";
}

// A random Idempotency-Key (crypto.randomUUID needs a secure context; this does not).
export function freshKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

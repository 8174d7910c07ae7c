// Two small SVG charts, drawn from scratch: bars per outcome, and lines over time.

import { OUTCOMES, num, s } from "./dom.js";

const WIDTH = 480;

// One horizontal bar per outcome that has targets (and `remaining` while some are left).
export function outcomeBars(counts) {
  const rows = OUTCOMES.filter((o) => counts[o] > 0);
  const row = 22, label = 130, room = 70;
  const height = Math.max(1, rows.length) * row + 4;
  const most = Math.max(1, ...rows.map((o) => counts[o]));
  const chart = s("svg", { viewBox: `0 0 ${WIDTH} ${height}`, class: "chart", role: "img",
    "aria-label": "targets per outcome" });
  if (!rows.length) chart.append(s("text", { x: 4, y: 16, class: "axis" }, "no targets yet"));
  rows.forEach((outcome, i) => {
    const y = i * row + 2;
    const width = Math.max(1, ((WIDTH - label - room) * counts[outcome]) / most);
    chart.append(
      s("text", { x: label - 8, y: y + 15, class: "axis", "text-anchor": "end" }, outcome),
      s("rect", { x: label, y: y + 3, width, height: row - 6, rx: 2, class: `o-${outcome}` },
        s("title", {}, `${outcome}: ${num(counts[outcome])}`)),
      s("text", { x: label + width + 6, y: y + 15, class: "value" }, num(counts[outcome])),
    );
  });
  return chart;
}

// A round upper bound for the y axis: 1, 2, 5, 10, 20, 50...
function ceiling(value) {
  const step = 10 ** Math.floor(Math.log10(Math.max(value, 1)));
  return [1, 2, 5, 10].map((m) => m * step).find((c) => c >= value);
}

// Lines over the last `span` seconds: series = [{name, cls, points: [[unix_s, value], ...]}].
export function lineChart(series, span) {
  const height = 170, left = 44, right = 10, top = 10, bottom = 22;
  const chart = s("svg", { viewBox: `0 0 ${WIDTH} ${height}`, class: "chart", role: "img",
    "aria-label": series.map((x) => x.name).join(", ") });
  const times = series.flatMap((x) => x.points.map(([t]) => t));
  if (times.length < 2) {
    chart.append(s("text", { x: left, y: height / 2, class: "axis" },
      "no samples yet: the job is not running"));
    return chart;
  }
  const t1 = Math.max(...times);
  const t0 = Math.max(Math.min(...times), t1 - span);
  const shown = series.map((x) => x.points.filter(([t]) => t >= t0));
  const peak = ceiling(Math.max(1, ...shown.flat().map(([, v]) => v)));
  const x = (t) => left + ((WIDTH - left - right) * (t - t0)) / Math.max(1, t1 - t0);
  const y = (v) => top + (height - top - bottom) * (1 - v / peak);
  for (const v of [0, peak / 2, peak]) {
    chart.append(
      s("line", { x1: left, x2: WIDTH - right, y1: y(v), y2: y(v), class: "rule" }),
      s("text", { x: left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, +v.toFixed(1)),
    );
  }
  chart.append(
    s("text", { x: left, y: height - 6, class: "axis" }, `-${Math.round(t1 - t0)}s`),
    s("text", { x: WIDTH - right, y: height - 6, class: "axis", "text-anchor": "end" }, "now"),
  );
  series.forEach((one, i) => {
    const points = shown[i].map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    if (!points) return;
    chart.append(s("polyline", { points, class: `line ${one.cls}` }, s("title", {}, one.name)));
  });
  return chart;
}

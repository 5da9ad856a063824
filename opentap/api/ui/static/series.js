// A capture whose data is a time series (linkstats, sensor, and any type to come whose CSV is a `time` column
// in epoch ms and numeric columns): one chart per numeric column, with its unit where the device states one
// (a sensor point's columns in /capabilities).
import { call } from "./api.js";
import { clear, h } from "./dom.js";
import { timeChart } from "./charts.js";

const MAX_POINTS = 5000;  // drawn per chart: a long capture is thinned evenly, its shape kept

export function parseSeries(text) {
  const lines = text.split("\n").filter((l) => l.length);
  if (!lines.length) return { columns: [], time: [], values: {} };
  const head = lines[0].split(",");
  const ti = head.indexOf("time");
  const time = [], values = Object.fromEntries(head.map((c) => [c, []]));
  for (const line of lines.slice(1)) {
    const cells = line.split(",");
    const t = Number(cells[ti]);
    if (!Number.isFinite(t)) continue;  // a trailer or a line being written
    time.push(t / 1000);
    head.forEach((c, i) => { const v = cells[i] === "" || cells[i] === undefined ? null : Number(cells[i]); values[c].push(Number.isFinite(v) ? v : null); });
  }
  const columns = head.filter((c, i) => i !== ti && values[c].some((v) => v !== null));
  return { columns, time, values };
}

function thin(time, values) {
  if (time.length <= MAX_POINTS) return [time, values];
  const step = time.length / MAX_POINTS;
  const keep = Array.from({ length: MAX_POINTS }, (_, i) => Math.floor(i * step));
  return [keep.map((i) => time[i]), values.map((v) => keep.map((i) => v[i]))];
}

function units(ctx, cap) {
  const point = ((ctx.caps.observation_points || {}).sensor || []).find((p) => p.name === cap.observationpt);
  const out = Object.fromEntries(((point && point.columns) || []).map((c) => [c.name, c.unit || ""]));
  if (cap.type === "linkstats") for (const c of ["rx_bytes", "tx_bytes"]) out[c] = "bytes (counter)";
  return out;
}

export async function render(box, cap, ctx) {
  const response = await call("/retrieve", { params: { id: cap.id, project: cap.project_id, format: "csv" }, raw: true });
  const series = parseSeries(await response.text());
  const unit = units(ctx, cap);
  clear(box, h("h2", {}, `${series.columns.length} series, ${series.time.length.toLocaleString("en")} rows`));
  const plots = [];
  for (const column of series.columns) {
    const card = h("section", { class: "card", "aria-label": `${column} over time` });
    box.append(card);
    const [x, [y]] = thin(series.time, [series.values[column]]);
    plots.push(timeChart(card, column, x, [[column, y]], { unit: unit[column] || "", format: (v) => (Math.abs(v) >= 1e5 ? v.toExponential(2) : String(Math.round(v * 1000) / 1000)) }));
  }
  if (!series.columns.length) box.append(h("p", { class: "muted" }, "No rows yet."));
  performance.mark("opentap:series");
  return () => plots.forEach((p) => p && (p.stopResizing(), p.destroy()));
}

// Overview: the points the caller may use with live rates (GET /observation-points, polled), rings where the
// device has them, sensors with their latest values, the device's limits and the disk used against the quota.
import { call } from "./api.js";
import { badge, bits, bytes, clear, duration, h, meter, sparkline, table, when } from "./dom.js";

const POLL_MS = 2000;

function limits(caps, usage) {
  const p = usage.project, d = usage.device;
  const rows = [
    ["Capture length limit", duration(caps.capture_length_limit)],
    ["Retention", `${caps.retention_minutes} min`],
    ["Concurrent captures", `${p.running} running of ${p.max_concurrent_captures} for project ${p.name}` +
      (d.running !== undefined ? `; ${d.running} of ${d.max_concurrent_captures} on the device` : `; ${d.max_concurrent_captures} on the device`)],
  ];
  const disk = [h("h3", {}, `Disk: project ${p.name}`),
    meter(p.used_bytes / Math.max(1, p.quota_bytes), `disk used by project ${p.name}`),
    h("p", { class: "muted" }, `${bytes(p.used_bytes)} of ${bytes(p.quota_bytes)} quota`)];
  if (d.used_bytes !== undefined) {
    disk.push(h("h3", {}, "Disk: the whole device"),
      meter(d.used_bytes / Math.max(1, d.quota_bytes), "disk used by the device"),
      h("p", { class: "muted" }, `${bytes(d.used_bytes)} of ${bytes(d.quota_bytes)} quota; ` +
        `the file system has ${bytes(d.filesystem_free_bytes)} free of ${bytes(d.filesystem_bytes)}`));
  }
  return h("section", { class: "card", "aria-labelledby": "limits-title" }, h("h2", { id: "limits-title" }, "Limits"),
    h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])), disk);
}

function pointsTable(points, caps, admin) {
  const rings = Object.fromEntries((caps.observation_points.network || []).map((p) => [p.name, p.ring_since]));
  const headers = ["Point", ...(admin ? ["Interface"] : []), "State", "Receive", "Transmit", "Last minutes", "Ring"];
  const rows = points.map((p) => [
    p.name, ...(admin ? [p.interface] : []), badge(p.state),
    h("span", { class: "rx" }, bits(p.rx_bps)), h("span", { class: "tx" }, bits(p.tx_bps)),
    sparkline(p.history, `receive (blue) and transmit (orange) rate of ${p.name}`),
    rings[p.name] ? `back to ${when(rings[p.name])}` : h("span", { class: "muted" }, "no ring"),
  ]);
  return table(headers, rows, { numeric: admin ? [3, 4] : [2, 3] });
}

async function latestValues(point) {
  // the newest sensor capture at the point, its last row: the device keeps no other reading
  const list = await call("/captures", { params: { type: "sensor", observationpt: point.name, limit: 1, order: "desc" } });
  const cap = list.captures[0];
  if (!cap || cap.state === "scheduled") return null;
  const text = await (await call("/retrieve", { params: { id: cap.id, project: cap.project_id }, raw: true })).text();
  const lines = text.trim().split("\n");
  if (lines.length < 2) return null;
  const head = lines[0].split(","), last = lines[lines.length - 1].split(",");
  return { time: Number(last[0]) / 1000, values: Object.fromEntries(head.slice(1).map((k, i) => [k, last[i + 1]])) };
}

async function sensors(caps, box) {
  const points = (caps.observation_points && caps.observation_points.sensor) || [];
  if (!points.length) {
    clear(box, h("h2", {}, "Sensors"), h("p", { class: "muted" }, "This device has no sensor points you may use."));
    return;
  }
  const rows = [];
  for (const p of points) {
    let latest = null;
    try { latest = await latestValues(p); } catch { latest = null; }
    for (const c of p.columns || []) {
      const v = latest ? latest.values[c.name] : undefined;
      rows.push([p.name, c.name, c.unit || "", v === undefined || v === "" ? "–" : v,
        latest ? when(latest.time) : "no capture yet", p.available === false ? `unavailable: ${p.why || ""}` : "available"]);
    }
  }
  clear(box, h("h2", {}, "Sensors"), table(["Point", "Sensor", "Unit", "Latest value", "At", "Now"], rows));
}

export function render(main, ctx) {
  let alive = true;
  const pointsBox = h("section", { class: "card wide", "aria-labelledby": "points-title" },
    h("h2", { id: "points-title" }, "Observation points"), h("p", { class: "muted" }, "Reading counters…"));
  const limitsBox = h("div", {});
  const sensorsBox = h("section", { class: "card", "aria-label": "Sensors" }, h("h2", {}, "Sensors"));
  const error = h("div", { role: "alert" });
  clear(main, h("h1", {}, "Overview"), error, h("div", { class: "grid" }, pointsBox, limitsBox, sensorsBox));
  const caps = ctx.caps;

  async function refresh() {
    try {
      const [points, usage] = await Promise.all([call("/observation-points"), call("/usage")]);
      if (!alive) return;
      clear(pointsBox, h("h2", { id: "points-title" }, "Observation points"),
        points.points.length ? pointsTable(points.points, caps, ctx.admin) : h("p", { class: "muted" }, "No observation point is open to you."),
        h("p", { class: "muted" }, `Rates from the interfaces' kernel counters, sampled every ${POLL_MS / 1000} s while this page is open.`));
      clear(limitsBox, limits(caps, usage));
      clear(error);
      performance.mark("opentap:overview");
    } catch (e) {
      if (alive) clear(error, h("p", { class: "error" }, e.message));
    }
  }
  refresh();
  sensors(caps, sensorsBox).catch((e) => clear(sensorsBox, h("h2", {}, "Sensors"), h("p", { class: "error" }, e.message)));
  const timer = setInterval(refresh, POLL_MS);
  document.title = "Overview – OpenTap";
  return () => { alive = false; clearInterval(timer); };
}


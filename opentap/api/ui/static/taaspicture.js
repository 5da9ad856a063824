// The picture of Tap-as-a-Service: hosts as bands (binding:host_id), source ports on the left, tap services on
// the right with the port their copies go to, and an arrow per tap flow coloured by its status.
import { h } from "./dom.js";

const W = 760, ROW = 34, PAD = 14;

export function picture(data) {
  const ports = Object.fromEntries(data.ports.map((p) => [p.id, p]));
  const sources = [...new Set(data.tap_flows.map((f) => f.source_port))].map((id) => ports[id] || { id, name: "(not visible)" });
  const services = data.tap_services;
  if (!services.length && !sources.length) return h("p", { class: "muted" }, "No tap service yet: create a port for the monitoring machine, a tap service on it, then tap flows from the ports to watch.");
  const hostOf = (p) => p["binding:host_id"] || "this device";
  const hosts = [...new Set([...sources.map(hostOf), ...services.map((s) => hostOf(ports[s.port_id] || {}))])].sort();
  const left = new Map(), right = new Map();
  const svg = h("svg", { class: "taas", viewBox: "0 0 10 10", role: "img", "aria-labelledby": "taas-pic-title" },
    h("title", { id: "taas-pic-title" }, `Tap flows: ${data.tap_flows.length} mirrors from ${sources.length} ports into ${services.length} tap services across ${hosts.length} host(s)`));
  let y = PAD;
  for (const host of hosts) {
    const mine = sources.filter((p) => hostOf(p) === host);
    const theirs = services.filter((s) => hostOf(ports[s.port_id] || {}) === host);
    const rows = Math.max(mine.length, theirs.length, 1);
    const top = y;
    svg.append(h("rect", { class: "host", x: 4, y: top, width: W - 8, height: rows * ROW + 24, rx: 6 }),
      h("text", { x: 12, y: top + 15 }, `host ${host}`));
    mine.forEach((p, i) => {
      const cy = top + 24 + i * ROW;
      left.set(p.id, cy + 12);
      svg.append(h("rect", { class: "node", x: 16, y: cy, width: 230, height: 24, rx: 4 }),
        h("text", { x: 24, y: cy + 16 }, `port ${p.name || p.id.slice(0, 8)} (${(p["binding:profile"] || {}).interface || "?"})`));
    });
    theirs.forEach((s, i) => {
      const cy = top + 24 + i * ROW;
      right.set(s.id, cy + 12);
      const port = ports[s.port_id];
      svg.append(h("rect", { class: "node service", x: W - 290, y: cy, width: 274, height: 24, rx: 4 }),
        h("text", { x: W - 282, y: cy + 16 }, `service ${s.name || s.id.slice(0, 8)} → ${port ? (port["binding:profile"] || {}).interface || port.name : "?"}`));
    });
    y = top + rows * ROW + 24 + PAD;
  }
  for (const f of data.tap_flows) {
    const y1 = left.get(f.source_port), y2 = right.get(f.tap_service_id);
    if (y1 === undefined || y2 === undefined) continue;
    const edge = h("path", { class: `edge s-${f.status}`, d: `M 246 ${y1} C ${W / 2} ${y1}, ${W / 2} ${y2}, ${W - 290} ${y2}` });
    edge.append(h("title", {}, `${f.name || f.id.slice(0, 8)}: ${f.direction}${f.vlan_filter ? ` VLANs ${f.vlan_filter}` : ""}, ${f.status}${f.status_reason ? ` (${f.status_reason})` : ""}`));
    svg.append(edge, h("text", { x: W / 2 - 20, y: (y1 + y2) / 2 - 3 }, `${f.direction} ${f.status}`));
  }
  svg.setAttribute("viewBox", `0 0 ${W} ${y}`);
  return svg;
}

// Tap-as-a-Service through the device's Neutron API: ports, tap services and tap flows with status and reason,
// created, renamed and deleted here, and a picture of which ports are mirrored into which service, grouped by
// the host each port is on (binding:host_id).
import { call } from "./api.js";
import { badge, clear, field, h, select, table } from "./dom.js";
import { picture } from "./taaspicture.js";

const POLL_MS = 2000;
const RES = {
  ports: { path: "/v2.0/ports", member: "port" },
  tap_services: { path: "/v2.0/taas/tap_services", member: "tap_service" },
  tap_flows: { path: "/v2.0/taas/tap_flows", member: "tap_flow" },
};

const short = (id) => (id ? id.slice(0, 8) : "");
const nameOf = (obj) => obj.name || short(obj.id);

function form(title, controls, submit, out) {
  const f = h("form", { class: "stack", "aria-label": title }, controls, out,
    h("div", {}, h("button", { class: "primary", type: "submit" }, "Create")));
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    try { await submit(); clear(out); f.reset(); } catch (err) { clear(out, h("p", { class: "error" }, err.message)); }
  });
  return f;
}

export function render(main, ctx) {
  let alive = true, timer = null;
  let data = { ports: [], tap_services: [], tap_flows: [] };
  const error = h("div", { role: "alert" });
  const pictureBox = h("section", { class: "card wide", "aria-labelledby": "picture-title" });
  const lists = { ports: h("div", {}), tap_services: h("div", {}), tap_flows: h("div", {}) };
  const outs = { ports: h("div", { class: "full", role: "alert" }), tap_services: h("div", { class: "full", role: "alert" }), tap_flows: h("div", { class: "full", role: "alert" }) };

  async function create(kind, body) {
    const made = await call(RES[kind].path, { method: "POST", body: { [RES[kind].member]: body } });
    ctx.say(`Created ${RES[kind].member.replace("_", " ")} ${nameOf(made[RES[kind].member])}`);
    await refresh();
  }

  async function act(kind, obj, method, body) {
    try {
      await call(`${RES[kind].path}/${encodeURIComponent(obj.id)}`, { method, body });
      ctx.say(`${method === "DELETE" ? "Deleted" : "Updated"} ${RES[kind].member.replace("_", " ")} ${nameOf(obj)}`);
      await refresh();
    } catch (e) { ctx.say(`${nameOf(obj)}: ${e.message}`); }
  }

  function rowActions(kind, obj) {
    if (!ctx.writer) return "";
    const rename = h("button", { type: "button", "aria-label": `Rename ${nameOf(obj)}`, onclick: () => {
      const name = window.prompt(`New name for ${nameOf(obj)}`, obj.name || "");
      if (name !== null) act(kind, obj, "PUT", { [RES[kind].member]: { name } });
    } }, "Rename");
    const del = h("button", { type: "button", class: "danger", "aria-label": `Delete ${nameOf(obj)}`, onclick: () => {
      if (window.confirm(`Delete ${RES[kind].member.replace("_", " ")} ${nameOf(obj)}?`)) act(kind, obj, "DELETE");
    } }, "Delete");
    return h("div", { class: "actions" }, rename, del);
  }

  function forms() {
    const portName = h("input", { type: "text", name: "name", autocomplete: "off" });
    const iface = h("input", { type: "text", name: "interface", required: true, autocomplete: "off", placeholder: "tap0, vnet3…" });
    const hostSide = h("input", { type: "checkbox", name: "host_side" });
    const portProject = h("input", { type: "text", name: "project_id", autocomplete: "off", placeholder: ctx.caps.project });
    const portForm = form("Create a port", [field("Name", portName), field("Interface", iface),
      ...(ctx.admin ? [field("Project", portProject)] : []),
      h("div", {}, h("label", {}, hostSide, " the host's own interface (host_side)"))],
    () => create("ports", { name: portName.value, "binding:profile": { interface: iface.value.trim(), ...(hostSide.checked ? { host_side: true } : {}) },
      ...(ctx.admin && portProject.value.trim() ? { project_id: portProject.value.trim() } : {}) }), outs.ports);

    const svcName = h("input", { type: "text", name: "name", autocomplete: "off" });
    const svcPort = h("select", { name: "port_id", required: true });
    const svcForm = form("Create a tap service", [field("Name", svcName), field("Port (where copies go)", svcPort)],
      () => create("tap_services", { name: svcName.value, port_id: svcPort.value }), outs.tap_services);

    const flowName = h("input", { type: "text", name: "name", autocomplete: "off" });
    const flowSvc = h("select", { name: "tap_service_id", required: true });
    const flowPort = h("select", { name: "source_port", required: true });
    const direction = select("direction", [["BOTH", "BOTH"], ["IN", "IN"], ["OUT", "OUT"]], "BOTH");
    const vlan = h("input", { type: "text", name: "vlan_filter", autocomplete: "off", placeholder: "e.g. 9,18-27 (optional)" });
    const flowForm = form("Create a tap flow", [field("Name", flowName), field("Tap service", flowSvc), field("Source port", flowPort),
      field("Direction", direction), field("VLAN filter", vlan)],
    () => create("tap_flows", { name: flowName.value, tap_service_id: flowSvc.value, source_port: flowPort.value,
      direction: direction.value, ...(vlan.value.trim() ? { vlan_filter: vlan.value.trim() } : {}) }), outs.tap_flows);
    return { portForm, svcForm, flowForm, fill: () => {
      const opts = (list) => list.map((o) => h("option", { value: o.id }, `${nameOf(o)} (${short(o.id)})`));
      for (const [sel, list] of [[svcPort, data.ports], [flowPort, data.ports], [flowSvc, data.tap_services]]) {
        const kept = sel.value;
        clear(sel, opts(list));
        if (list.some((o) => o.id === kept)) sel.value = kept;
      }
    } };
  }

  const f = ctx.writer ? forms() : null;
  clear(main, h("h1", {}, "Tap-as-a-Service"), error, pictureBox, h("div", { class: "grid" },
    h("section", { class: "card wide", "aria-labelledby": "flows-title" }, h("h2", { id: "flows-title" }, "Tap flows"), lists.tap_flows, f && f.flowForm),
    h("section", { class: "card wide", "aria-labelledby": "services-title" }, h("h2", { id: "services-title" }, "Tap services"), lists.tap_services, f && f.svcForm),
    h("section", { class: "card wide", "aria-labelledby": "ports-title" }, h("h2", { id: "ports-title" }, "Ports"), lists.ports, f && f.portForm)));

  function draw() {
    const ports = Object.fromEntries(data.ports.map((p) => [p.id, p]));
    const services = Object.fromEntries(data.tap_services.map((s) => [s.id, s]));
    const admin = ctx.admin ? (o) => [o.project_id] : () => [];
    const projectHead = ctx.admin ? ["Project"] : [];
    clear(lists.ports, table(["Name", "Id", ...projectHead, "Interface", "Host", "Status", ""], data.ports.map((p) => [
      nameOf(p), short(p.id), ...admin(p), (p["binding:profile"] || {}).interface || "", p["binding:host_id"] || "", badge(p.status), rowActions("ports", p)])));
    clear(lists.tap_services, table(["Name", "Id", ...projectHead, "Port", "Status", ""], data.tap_services.map((s) => [
      nameOf(s), short(s.id), ...admin(s), ports[s.port_id] ? nameOf(ports[s.port_id]) : short(s.port_id), badge(s.status), rowActions("tap_services", s)])));
    clear(lists.tap_flows, table(["Name", "Id", ...projectHead, "Source port", "Tap service", "Direction", "VLANs", "Status", "Reason", ""], data.tap_flows.map((t) => [
      nameOf(t), short(t.id), ...admin(t), ports[t.source_port] ? nameOf(ports[t.source_port]) : short(t.source_port),
      services[t.tap_service_id] ? nameOf(services[t.tap_service_id]) : short(t.tap_service_id), t.direction, t.vlan_filter || "all",
      h("span", { "data-flow": t.id }, badge(t.status)), t.status_reason || "", rowActions("tap_flows", t)])));
    clear(pictureBox, h("h2", { id: "picture-title" }, "What is mirrored where"), picture(data));
    if (f) f.fill();
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const [ports, svcs, flows] = await Promise.all(Object.values(RES).map((r) => call(r.path)));
      if (!alive) return;
      data = { ports: ports.ports, tap_services: svcs.tap_services, tap_flows: flows.tap_flows };
      draw();
      clear(error);
      performance.mark("opentap:taas");
    } catch (e) {
      if (alive) clear(error, h("p", { class: "error" }, e.message));
    }
    if (alive) timer = setTimeout(refresh, POLL_MS);
  }
  refresh();
  document.title = "Tap-as-a-Service – OpenTap";
  return () => { alive = false; clearTimeout(timer); };
}

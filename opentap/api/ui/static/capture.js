// One capture: its fields, progress while it runs, its downloads, and its data drawn by its kind: flow records
// (flows.js), a time series (series.js: linkstats, sensors), or for packets the downloads alone.
import { call } from "./api.js";
import { badge, bytes, clear, count, h, when } from "./dom.js";
import { actions } from "./captureactions.js";
import { progress } from "./captures.js";
import * as flows from "./flows.js";
import * as series from "./series.js";

const POLL_MS = 2000;

function facts(cap) {
  const rows = [
    ["State", badge(cap.state)], ["Type", cap.type], ["Observation point", cap.observationpt],
    ["Project", cap.project_id], ["Window", `${when(cap.startTime)} → ${when(cap.stopTime)} (${cap.duration} s)`],
    ["Progress", progress(cap)], ["Packets / rows", count(cap.packets)], ["Bytes seen", bytes(cap.bytes)],
    ["Dropped (kernel, interface)", `${count(cap.drops_kernel)}, ${count(cap.drops_interface)}`],
    ["Data kept", bytes(cap.data_bytes)], ["Filter", cap.options.filter || "none"],
    ["Reason", cap.reason || "–"],
  ];
  if (cap.interface) rows.splice(3, 0, ["Interface", cap.interface]);
  return h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export function render(main, ctx) {
  const id = ctx.arg;
  const project = ctx.params.get("project");
  let alive = true, timer = null, view = null, lastState = null, stopSeries = null;
  const head = h("section", { class: "card" });
  const dataBox = h("div", {});
  const error = h("div", { role: "alert" });
  clear(main, h("p", {}, h("a", { href: "#/captures" }, "← Captures")), h("h1", {}, `Capture ${id}`), error, head, dataBox);
  document.title = `${id} – OpenTap`;

  async function drawData(cap) {
    if (cap.state === "scheduled") { clear(dataBox, h("p", { class: "muted" }, "Its data will be here once it starts.")); return; }
    if (cap.type === "netflow") {
      if (view) view.refresh(); else view = flows.render(dataBox, cap, ctx);
      return;
    }
    const fmt = (ctx.caps.types[cap.type] || {}).formats || [];
    if (cap.type === "ethernet" || !fmt.includes("csv")) {
      clear(dataBox, h("p", { class: "muted" }, "Packets: download them above (pcap opens in Wireshark or tcpdump)."));
      return;
    }
    if (stopSeries) stopSeries();
    try { stopSeries = await series.render(dataBox, cap, ctx); } catch (e) { clear(dataBox, h("p", { class: "error" }, e.message)); }
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const { capture: cap } = await call(`/captures/${encodeURIComponent(id)}`, { params: { project } });
      if (!alive) return;
      clear(head, h("h2", {}, "Details"), facts(cap), h("h2", {}, "Data"), actions(cap, ctx, (deleted) => {
        if (deleted) location.hash = "#/captures"; else refresh();
      }));
      clear(error);
      if (cap.state !== lastState || cap.state === "running") {
        const first = lastState === null;
        lastState = cap.state;
        if (first || cap.state !== "running" || cap.type !== "netflow") await drawData(cap);
        else if (view) view.refresh();
      }
      performance.mark("opentap:capture");
      if (cap.state === "running" || cap.state === "scheduled") timer = setTimeout(refresh, cap.state === "running" && cap.type === "netflow" ? 5000 : POLL_MS);
    } catch (e) {
      if (alive) clear(error, h("p", { class: "error" }, e.message));
    }
  }
  refresh();
  return () => { alive = false; clearTimeout(timer); if (view) view.stop(); if (stopSeries) stopSeries(); };
}

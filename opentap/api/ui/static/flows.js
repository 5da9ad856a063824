// A netflow capture at a glance: top talkers, listeners, applications and protocols (GET …/flows/summary),
// bytes over time by protocol and by application, and the records as a table sorted, filtered and paged by the
// device (GET …/flows): a capture may hold millions of records, the page only ever holds one page of them.
import { call } from "./api.js";
import { bytes, clear, count, field, h } from "./dom.js";
import { bars, timeChart } from "./charts.js";

const PAGE = 50;
const HEAD = { ts: "Start", te: "End", td: "Duration (s)", sa: "Source", da: "Destination", sp: "Src port", dp: "Dst port",
  pr: "Protocol", flg: "Flags", stos: "ToS", ipkt: "Packets", ibyt: "Bytes", svln: "VLAN", ismc: "Src MAC", idmc: "Dst MAC" };
const SORTABLE = new Set(["ts", "te", "td", "sa", "da", "sp", "dp", "pr", "ipkt", "ibyt"]);
const NUMERIC = new Set(["td", "sp", "dp", "stos", "ipkt", "ibyt", "svln"]);

export function render(box, cap, ctx) {
  const state = { sort: "ibyt", order: "desc", offset: 0, filter: { host: "", port: "", pr: "" } };
  const path = `/captures/${encodeURIComponent(cap.id)}/flows`;
  const glance = h("div", { class: "grid" });
  const charts = h("div", { class: "grid" });
  const tableBox = h("div", { "aria-live": "polite" });
  const error = h("div", { role: "alert" });
  let plots = [];

  const host = h("input", { type: "text", name: "host", autocomplete: "off", placeholder: "198.18.0.1" });
  const port = h("input", { type: "number", name: "port", min: "0", max: "65535" });
  const proto = h("input", { type: "text", name: "pr", autocomplete: "off", placeholder: "TCP, UDP, ICMP…" });
  const filterForm = h("form", { class: "toolbar", role: "search", "aria-label": "Filter flow records" },
    field("Address (either side)", host), field("Port (either side)", port), field("Protocol", proto),
    h("button", { type: "submit" }, "Filter"), h("button", { type: "reset" }, "Clear"));
  filterForm.addEventListener("submit", (e) => { e.preventDefault(); apply({ host: host.value.trim(), port: port.value, pr: proto.value.trim() }); });
  filterForm.addEventListener("reset", () => setTimeout(() => apply({ host: "", port: "", pr: "" }), 0));

  function apply(filter) {
    state.filter = filter;
    state.offset = 0;
    host.value = filter.host; port.value = filter.port; proto.value = filter.pr;
    loadSummary();
    loadPage();
  }

  function params(extra) {
    return { project: cap.project_id, ...state.filter, ...extra };
  }

  async function loadSummary() {
    try {
      const s = await call(`${path}/summary`, { params: params({ top: 10, buckets: 60 }) });
      plots.forEach((p) => p && (p.stopResizing(), p.destroy()));
      plots = [];
      clear(glance,
        bars("Top talkers (sources by bytes)", s.talkers, { label: (i) => i.address, onPick: (i) => apply({ ...state.filter, host: i.address }) }),
        bars("Top destinations", s.listeners, { label: (i) => i.address, onPick: (i) => apply({ ...state.filter, host: i.address }) }),
        bars("Top applications (lower port)", s.ports, { label: (i) => i.label, onPick: (i) => apply({ ...state.filter, port: i.port ? String(i.port) : "", pr: i.protocol }) }),
        bars("Protocols", s.protocols, { label: (i) => i.protocol, onPick: (i) => apply({ ...state.filter, pr: i.protocol }) }));
      glance.firstChild.id = "top-talkers";
      const t = s.timeline;
      const x = Array.from({ length: t.buckets }, (_, i) => t.start + i * t.step);
      clear(charts);
      const a = h("section", { class: "card wide", "aria-label": "Bytes over time by protocol" });
      const b = h("section", { class: "card wide", "aria-label": "Bytes over time by application" });
      charts.append(a, b);
      const fmt = (v) => bytes(v);
      plots.push(timeChart(a, `Bytes per ${t.step} s by protocol`, x, Object.entries(t.protocols), { unit: "bytes", format: fmt, stacked: true, step: t.step }));
      plots.push(timeChart(b, `Bytes per ${t.step} s by application`, x, Object.entries(t.ports), { unit: "bytes", format: fmt, step: t.step }));
      performance.mark("opentap:flows-summary");
    } catch (e) {
      clear(error, h("p", { class: "error" }, e.message));
    }
  }

  function header(column) {
    const sorted = state.sort === column;
    const aria = sorted ? (state.order === "asc" ? "ascending" : "descending") : null;
    const label = HEAD[column] || column;
    const th = h("th", { scope: "col", class: NUMERIC.has(column) ? "num" : null, "aria-sort": aria });
    if (!SORTABLE.has(column)) { th.textContent = label; return th; }
    th.append(h("button", { type: "button", class: "sort", onclick: () => {
      state.order = sorted && state.order === "desc" ? "asc" : (sorted ? "desc" : (NUMERIC.has(column) ? "desc" : "asc"));
      state.sort = column;
      state.offset = 0;
      loadPage();
    } }, label));
    return th;
  }

  async function loadPage() {
    try {
      const p = await call(path, { params: params({ sort: state.sort, order: state.order, offset: state.offset, limit: PAGE }) });
      const columns = p.columns;
      const pages = Math.max(1, Math.ceil(p.matched / PAGE));
      const at = Math.floor(state.offset / PAGE);
      const move = (to) => { state.offset = Math.max(0, Math.min(pages - 1, to)) * PAGE; loadPage(); };
      const jump = h("input", { type: "number", min: "1", max: String(pages), value: String(at + 1), name: "page" });
      jump.addEventListener("change", () => move(Number(jump.value) - 1));
      clear(tableBox,
        h("div", { class: "scroll" }, h("table", { id: "flow-table" },
          h("caption", { class: "muted" }, `${count(p.matched)} of ${count(p.records)} records${p.partial ? " so far (the capture is running)" : ""}, sorted by ${HEAD[p.sort]} ${p.order === "asc" ? "ascending" : "descending"}`),
          h("thead", {}, h("tr", {}, columns.map(header))),
          h("tbody", {}, p.rows.map((row) => h("tr", {}, row.map((v, i) => h("td", { class: NUMERIC.has(columns[i]) ? "num" : (columns[i] === "ts" || columns[i] === "te" ? "time" : null) }, typeof v === "number" && columns[i] !== "td" ? count(v) : v))))))),
        h("nav", { class: "pager", "aria-label": "Pages of records" },
          h("button", { type: "button", disabled: at === 0, onclick: () => move(0) }, "First"),
          h("button", { type: "button", disabled: at === 0, onclick: () => move(at - 1) }, "Previous"),
          field(`Page (of ${count(pages)})`, jump),
          h("button", { type: "button", disabled: at >= pages - 1, onclick: () => move(at + 1) }, "Next"),
          h("button", { type: "button", disabled: at >= pages - 1, onclick: () => move(pages - 1) }, "Last")));
      clear(error);
      performance.mark("opentap:flows-table");
    } catch (e) {
      clear(error, h("p", { class: "error" }, e.message));
    }
  }

  clear(box, error, glance, charts,
    h("section", { class: "card", "aria-labelledby": "records-title" }, h("h2", { id: "records-title" }, "Flow records"), filterForm, tableBox));
  loadPage();
  loadSummary();
  return { refresh: () => { loadSummary(); loadPage(); }, stop: () => plots.forEach((p) => p && (p.stopResizing(), p.destroy())) };
}

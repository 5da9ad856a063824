// Captures: schedule one (type, point, window, filter, period), and the caller's captures, paged and filtered
// by state, type, point and time on the device (GET /captures?limit=…), with progress, downloads, cancel, delete.
import { call } from "./api.js";
import { badge, bytes, clear, count, field, h, meter, select, table, when } from "./dom.js";
import { actions } from "./captureactions.js";

const PAGE = 50;
const POLL_MS = 2000;

function localInput(unix) {  // a datetime-local value in the browser's time zone
  const d = new Date(unix * 1000 - new Date().getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}

function scheduleForm(ctx, onDone) {
  const caps = ctx.caps;
  const types = caps.capture_types;
  const type = select("type", types.map((t) => [t, `${t} – ${caps.types[t].description}`]), types.includes("netflow") ? "netflow" : types[0]);
  const point = h("select", { name: "observationpt" });
  const when_ = select("when", [["now", "now"], ["at", "at a time…"]], "now");
  const at = h("input", { type: "datetime-local", name: "at", step: "1", value: localInput(Date.now() / 1000 + 60) });
  const atBox = field("Start at (your time zone)", at, { hidden: true });
  const seconds = h("input", { type: "number", name: "duration", min: "1", max: String(caps.capture_length_limit), value: "60", required: true });
  const filter = h("input", { type: "text", name: "filter", placeholder: "e.g. tcp port 443", autocomplete: "off" });
  const period = h("input", { type: "number", name: "period", min: "10", value: "1000" });
  const id = h("input", { type: "text", name: "id", placeholder: "optional", autocomplete: "off", pattern: "[A-Za-z0-9_.\\-]{1,128}" });
  const filterBox = field("Filter (BPF)", filter);
  const periodBox = field("Period (ms)", period);
  const ringNote = h("p", { class: "muted full" });
  const out = h("div", { class: "full", role: "alert" });

  function pointsFor(t) {
    const kind = caps.types[t].observation_point_kind;
    const list = (caps.observation_points[kind] || []).map((p) => p.name);
    clear(point, list.map((n) => h("option", { value: n, selected: n === caps.default_observation_point }, n)));
    const opts = caps.types[t].options;
    filterBox.hidden = !opts.includes("filter");
    periodBox.hidden = !opts.includes("period");
    updateRing();
  }
  function updateRing() {
    const p = (caps.observation_points.network || []).find((x) => x.name === point.value);
    ringNote.textContent = p && p.ring_since
      ? `This point keeps a ring: a window may start as far back as ${when(p.ring_since)}.`
      : "This point keeps no ring: a window starts now or later.";
  }
  type.addEventListener("change", () => pointsFor(type.value));
  point.addEventListener("change", updateRing);
  when_.addEventListener("change", () => { atBox.hidden = when_.value !== "at"; });
  pointsFor(type.value);

  const form = h("form", { class: "stack", "aria-labelledby": "schedule-title" },
    field("Type", type), field("Observation point", point), field("Start", when_), atBox,
    field("Duration (s)", seconds), filterBox, periodBox, field("Id", id), ringNote, out,
    h("div", {}, h("button", { class: "primary", type: "submit" }, "Schedule")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const start = when_.value === "now" ? Date.now() / 1000 : new Date(at.value).getTime() / 1000;
    if (!Number.isFinite(start)) { clear(out, h("p", { class: "error" }, "Give a start time.")); return; }
    const body = { type: type.value, start: Math.floor(start), stop: Math.floor(start) + Number(seconds.value), observationpt: point.value };
    if (!filterBox.hidden && filter.value.trim()) body.filter = filter.value;
    if (!periodBox.hidden && period.value) body.period = Number(period.value);
    if (id.value.trim()) body.id = id.value.trim();
    try {
      const made = await call("/captures", { method: "POST", body });
      clear(out);
      ctx.say(`Scheduled ${made.id}${made.msg ? `: ${made.msg}` : ""}`);
      onDone(made);
    } catch (e) {
      clear(out, h("p", { class: "error" }, e.message));
    }
  });
  return h("section", { class: "card" }, h("h2", { id: "schedule-title" }, "Schedule a capture"), form);
}

export function progress(cap) {
  if (cap.state === "scheduled") return h("span", { class: "muted" }, `starts ${when(cap.startTime)}`);
  if (cap.state !== "running") return h("span", { class: "muted" }, cap.finished_at ? `ended ${when(cap.finished_at)}` : "");
  const f = (Date.now() / 1000 - cap.startTime) / Math.max(1, cap.stopTime - cap.startTime);
  return meter(f, `progress of ${cap.id}`);
}

function filters(ctx, params, apply) {
  const caps = ctx.caps;
  const state = select("state", [["", "any state"], ...["scheduled", "running", "complete", "truncated", "failed", "cancelled"].map((s) => [s, s])], params.get("state") || "");
  const type = select("type", [["", "any type"], ...caps.capture_types.map((t) => [t, t])], params.get("type") || "");
  const names = [...(caps.observation_points.network || []), ...(caps.observation_points.sensor || [])].map((p) => p.name);
  const point = select("point", [["", "any point"], ...names.map((n) => [n, n])], params.get("point") || "");
  const since = h("input", { type: "datetime-local", step: "1", name: "since", value: params.get("since") ? localInput(Number(params.get("since"))) : "" });
  const until = h("input", { type: "datetime-local", step: "1", name: "until", value: params.get("until") ? localInput(Number(params.get("until"))) : "" });
  const form = h("form", { class: "toolbar", role: "search", "aria-label": "Filter captures" },
    field("State", state), field("Type", type), field("Point", point), field("Window ends after", since),
    field("Window starts before", until), h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const time = (input) => (input.value ? String(Math.floor(new Date(input.value).getTime() / 1000)) : "");
    apply({ state: state.value, type: type.value, point: point.value, since: time(since), until: time(until), page: "" });
  });
  return form;
}

export function render(main, ctx) {
  let alive = true;
  let timer = null;
  const params = ctx.params;
  const page = Math.max(0, Number(params.get("page") || 0));
  const listBox = h("div", { "aria-live": "polite" }, h("p", { class: "muted" }, "Loading captures…"));
  const error = h("div", { role: "alert" });

  function go(changes) {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) { if (v) next.set(k, v); else next.delete(k); }
    location.hash = `#/captures?${next}`;
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const list = await call("/captures", { params: { state: params.get("state"), type: params.get("type"),
        observationpt: params.get("point"), since: params.get("since"), until: params.get("until"),
        limit: PAGE, offset: page * PAGE, order: "desc" } });
      if (!alive) return;
      const rows = list.captures.map((c) => [
        h("a", { href: `#/capture/${encodeURIComponent(c.id)}?project=${encodeURIComponent(c.project_id)}` }, c.id),
        ...(ctx.admin ? [c.project_id] : []), c.type, c.observationpt, badge(c.state), `${when(c.startTime)} → ${when(c.stopTime)}`,
        progress(c), count(c.packets), bytes(c.data_bytes), c.reason || "", actions(c, ctx, refresh)]);
      const headers = ["Id", ...(ctx.admin ? ["Project"] : []), "Type", "Point", "State", "Window", "Progress", "Packets / rows", "Data", "Reason", "Actions"];
      const last = Math.max(0, Math.ceil(list.total / PAGE) - 1);
      clear(listBox, table(headers, rows, { caption: `${count(list.total)} capture${list.total === 1 ? "" : "s"}, newest first`, numeric: ctx.admin ? [7, 8] : [6, 7] }),
        h("nav", { class: "pager", "aria-label": "Pages of captures" },
          h("button", { type: "button", disabled: page === 0, onclick: () => go({ page: String(page - 1) }) }, "Newer"),
          h("span", {}, `page ${page + 1} of ${last + 1}`),
          h("button", { type: "button", disabled: page >= last, onclick: () => go({ page: String(page + 1) }) }, "Older")));
      clear(error);
      performance.mark("opentap:captures");
      if (list.captures.some((c) => c.state === "running" || c.state === "scheduled")) timer = setTimeout(refresh, POLL_MS);
    } catch (e) {
      if (alive) clear(error, h("p", { class: "error" }, e.message));
    }
  }

  clear(main, h("h1", {}, "Captures"), error,
    ctx.writer ? scheduleForm(ctx, () => (page ? go({ page: "" }) : refresh())) : null,
    h("section", { class: "card", "aria-labelledby": "list-title" }, h("h2", { id: "list-title" }, "Your captures"),
      filters(ctx, params, go), listBox));
  refresh();
  document.title = "Captures – OpenTap";
  return () => { alive = false; clearTimeout(timer); };
}



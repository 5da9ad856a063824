// Building the page: every element is made here, and every text the device returns goes in as a text node
// (never as HTML), so capture ids, names and reasons, which are user input, are shown and never run.

export function h(tag, attrs = {}, ...children) {
  const svg = ["svg", "g", "rect", "line", "path", "polyline", "text", "title", "circle", "marker"].includes(tag);
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "text") el.textContent = String(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function badge(state) {
  return h("span", { class: `badge s-${String(state).replace(/[^A-Za-z_]/g, "")}` }, state);
}

export function table(headers, rows, { caption, numeric = [] } = {}) {
  return h("div", { class: "scroll" }, h("table", {},
    caption ? h("caption", { class: "muted" }, caption) : null,
    h("thead", {}, h("tr", {}, headers.map((t, i) => h("th", { scope: "col", class: numeric.includes(i) ? "num" : null }, t)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c, i) =>
      h("td", { class: numeric.includes(i) ? "num" : null }, c)))))));
}

let fieldCount = 0;
// A labelled control: label(text) + the control, tied by a fresh id.
export function field(text, control, extra = {}) {
  const id = control.id || `f${++fieldCount}`;
  control.id = id;
  return h("div", extra, h("label", { for: id }, text), control);
}

export function select(name, options, value) {
  return h("select", { name }, options.map(([v, t]) => h("option", { value: v, selected: v === value }, t)));
}

export function meter(fraction, label) {
  const pct = Math.max(0, Math.min(1, fraction || 0)) * 100;
  const bar = h("span", {});
  bar.style.width = `${pct.toFixed(1)}%`;  // the CSSOM, which the Content-Security-Policy allows
  return h("div", { class: `meter${pct >= 100 ? " full" : ""}`, role: "progressbar", "aria-valuemin": "0",
    "aria-valuemax": "100", "aria-valuenow": pct.toFixed(0), "aria-label": label }, bar);
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
export function bytes(n) {
  if (n === null || n === undefined) return "–";
  let i = 0;
  let v = Number(n);
  while (Math.abs(v) >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i && v < 10 ? 1 : 0)} ${UNITS[i]}`;
}

export function bits(bytesPerSecond) {
  if (bytesPerSecond === null || bytesPerSecond === undefined) return "–";
  const units = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s"];
  let v = Number(bytesPerSecond) * 8;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${v.toFixed(i && v < 10 ? 1 : 0)} ${units[i]}`;
}

export function count(n) {
  return n === null || n === undefined ? "–" : Number(n).toLocaleString("en");
}

export function when(unix) {
  if (unix === null || unix === undefined) return "–";
  const d = new Date(unix * 1000);
  const pad = (x) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

// A sparkline of two series as an SVG of polylines (no library: a few dozen points).
export function sparkline(points, label) {
  const w = 120, ht = 28;
  const svg = h("svg", { class: "spark", viewBox: `0 0 ${w} ${ht}`, role: "img", "aria-label": label },
    h("title", {}, label));
  if (points.length < 2) return svg;
  const t0 = points[0][0], t1 = points[points.length - 1][0];
  const top = Math.max(1, ...points.map((p) => Math.max(p[1], p[2])));
  const line = (k) => points.map((p) => `${(((p[0] - t0) / Math.max(1e-9, t1 - t0)) * w).toFixed(1)},${(ht - 1 - (p[k] / top) * (ht - 2)).toFixed(1)}`).join(" ");
  svg.append(h("polyline", { class: "rx", points: line(1) }), h("polyline", { class: "tx", points: line(2) }));
  return svg;
}

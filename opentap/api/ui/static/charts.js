// Charts over uPlot (vendor/, loaded by index.html as a classic script: window.uPlot), and plain bar lists.
import { bytes, count, h } from "./dom.js";

const COLOURS = ["#0b5cad", "#bc4c00", "#1a7f37", "#8250df", "#cf222e", "#9a6700", "#1b7c83", "#57606a", "#bf3989", "#4d2d00"];

// A time chart: x in UNIX seconds, one line per series; the legend names each, the axis says the unit.
// steps: each value holds until the next x (bytes per bucket); the bucket after the last is closed with its value.
export function timeChart(box, title, x, series, { unit = "", format = (v) => String(v), stacked = false, step = 0 } = {}) {
  const width = Math.max(280, box.clientWidth || 600);
  if (step) {
    x = [...x, x[x.length - 1] + step];
    series = series.map(([name, values]) => [name, [...values, values[values.length - 1]]]);
  }
  const data = [x];
  const opts = {
    title, width, height: 220, cursor: { drag: { x: true, y: false } },
    scales: { x: { time: true } },
    axes: [{}, { label: unit, size: 70, values: (_u, ticks) => ticks.map(format) }],
    series: [{}],
  };
  let running = x.map(() => 0);
  series.forEach(([name, values], i) => {
    const shown = stacked ? values.map((v, j) => (running[j] += v || 0)) : values;
    data.push(stacked ? [...shown] : shown);
    opts.series.push({ label: name, stroke: COLOURS[i % COLOURS.length], width: 1.5,
      paths: step && window.uPlot ? window.uPlot.paths.stepped({ align: 1 }) : undefined, points: { show: !step && x.length < 50 },
      fill: stacked ? `${COLOURS[i % COLOURS.length]}33` : undefined, value: (_u, v) => (v === null || v === undefined ? "–" : format(v)) });
  });
  if (stacked) { data.splice(1, data.length - 1, ...data.slice(1).reverse()); opts.series.splice(1, opts.series.length - 1, ...opts.series.slice(1).reverse()); }
  const holder = h("div", { class: "chart", role: "img", "aria-label": `${title}${unit ? ` (${unit})` : ""}` });
  box.append(holder);
  if (!window.uPlot) { holder.textContent = "(the chart library did not load)"; return null; }
  const plot = new window.uPlot(opts, data, holder);
  const resize = () => plot.setSize({ width: Math.max(280, box.clientWidth || width), height: 220 });
  window.addEventListener("resize", resize);
  plot.stopResizing = () => window.removeEventListener("resize", resize);
  return plot;
}

// A ranked list as bars: label, a bar proportional to bytes, bytes and flows; each label may filter the table.
export function bars(title, items, { label, onPick } = {}) {
  const top = Math.max(1, ...items.map((i) => i.bytes));
  return h("section", { class: "card", "aria-label": title }, h("h2", {}, title),
    items.length ? h("ol", { class: "bars" }, items.map((item) => {
      const bar = h("span", {});
      bar.style.width = `${((item.bytes / top) * 100).toFixed(1)}%`;
      const name = label(item);
      return h("li", {},
        onPick ? h("a", { href: "#", class: "label", title: name, onclick: (e) => { e.preventDefault(); onPick(item); } }, name)
          : h("span", { class: "label", title: name }, name),
        h("span", { class: "bar", "aria-hidden": "true" }, bar),
        h("span", { class: "muted" }, `${bytes(item.bytes)} · ${count(item.flows)} flows`));
    })) : h("p", { class: "muted" }, "No records."));
}

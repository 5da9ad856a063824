// What can be done with one capture: download it in each of its type's formats, cancel or delete it.
import { call, download } from "./api.js";
import { h } from "./dom.js";

export function actions(cap, ctx, after) {
  // a netflow capture has its packets only when it was asked to keep them
  const formats = (ctx.caps.types[cap.type] || { formats: [] }).formats
    .filter((f) => !(cap.type === "netflow" && f === "pcap" && !cap.options.keep_packets));
  if (formats.includes("csv")) formats.push("parquet");  // made on the page from the CSV (parquet.js)
  const buttons = [];
  if (cap.state !== "scheduled") {
    for (const format of formats) {
      buttons.push(h("button", { type: "button", "aria-label": `Download ${cap.id} as ${format}`, onclick: async () => {
        try {
          const got = await download(cap.id, cap.project_id, format);
          ctx.say(`Downloaded ${got.name} (${got.size} bytes)`);
        } catch (e) { ctx.say(`${cap.id}: ${e.message}`); }
      } }, format));
    }
  }
  if (ctx.writer) {
    const active = cap.state === "scheduled" || cap.state === "running";
    buttons.push(h("button", { type: "button", class: "danger", "aria-label": `${active ? "Cancel" : "Delete"} ${cap.id}`, onclick: async () => {
      if (!active && !window.confirm(`Delete capture ${cap.id} and its data?`)) return;
      try {
        await call(`/captures/${encodeURIComponent(cap.id)}`, { method: "DELETE", params: { project: cap.project_id } });
        ctx.say(`${active ? "Cancelled" : "Deleted"} ${cap.id}`);
        after(!active);
      } catch (e) { ctx.say(`${cap.id}: ${e.message}`); }
    } }, active ? "Cancel" : "Delete"));
  }
  return h("div", { class: "actions" }, buttons);
}

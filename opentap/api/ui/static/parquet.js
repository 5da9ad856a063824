// A capture's CSV as a Parquet file, made in the browser: the device serves CSV and pcap, and the Python client
// makes Parquet with pyarrow; the page does the same here with this small writer instead of a library (Parquet
// 2.x: one row group, one PLAIN-encoded, uncompressed data page per column, OPTIONAL columns with RLE
// definition levels, the footer in Thrift's compact protocol). Columns are typed as the client types them:
// times as UTC timestamps (ms), whole numbers as INT64, other numbers as DOUBLE, the rest as UTF-8 text.

const enc = new TextEncoder();

class Bytes {  // a growing byte buffer
  constructor() { this.parts = []; this.length = 0; }
  push(u8) { this.parts.push(u8); this.length += u8.length; }
  byte(b) { this.push(Uint8Array.of(b)); }
  varint(n) {  // unsigned LEB128 of a BigInt or number
    let v = BigInt(n);
    const out = [];
    do { let b = Number(v & 0x7fn); v >>= 7n; if (v) b |= 0x80; out.push(b); } while (v);
    this.push(Uint8Array.from(out));
  }
  zigzag(n) { const v = BigInt(n); this.varint(v >= 0n ? v << 1n : ((-v) << 1n) - 1n); }
  u32le(n) { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n, true); this.push(b); }
  concat() { const out = new Uint8Array(this.length); let at = 0; for (const p of this.parts) { out.set(p, at); at += p.length; } return out; }
}

// Thrift compact protocol: a struct is a list of [field id, type, value]; types: i32, i64, bin, list, struct.
const T = { i32: 5, i64: 6, bin: 8, list: 9, struct: 12 };
function struct(out, fields) {
  let last = 0;
  for (const [id, type, value] of fields) {
    if (value === undefined) continue;
    if (id - last > 0 && id - last <= 15) out.byte(((id - last) << 4) | T[type]);
    else { out.byte(T[type]); out.zigzag(id); }
    last = id;
    write(out, type, value);
  }
  out.byte(0);
}
function write(out, type, value) {
  if (type === "i32" || type === "i64") out.zigzag(value);
  else if (type === "bin") { const b = typeof value === "string" ? enc.encode(value) : value; out.varint(b.length); out.push(b); }
  else if (type === "struct") struct(out, value);
  else if (type === "list") {
    const [itemType, items] = value;
    if (items.length < 15) out.byte((items.length << 4) | T[itemType]);
    else { out.byte(0xf0 | T[itemType]); out.varint(items.length); }
    for (const item of items) write(out, itemType, item);
  }
}

const TIME_TEXT = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d+)?$/;
function kind(name, values) {
  const present = values.filter((v) => v !== "");
  if (name === "time" && present.every((v) => /^-?\d+(\.\d+)?$/.test(v))) return "epoch_ms";
  if (present.length && present.every((v) => TIME_TEXT.test(v))) return "time_text";
  if (present.length && present.every((v) => /^-?\d{1,18}$/.test(v))) return "int";
  if (present.length && present.every((v) => /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(v))) return "double";
  return "text";
}

function utcMs(text) {
  const m = TIME_TEXT.exec(text);
  return BigInt(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) + (m[7] ? Math.round(Number(m[7]) * 1000) : 0));
}

// PLAIN values of the present cells, and the column's schema: [physical type, converted type].
function column(kindName, values) {
  const present = values.filter((v) => v !== "");
  if (kindName === "text") {
    const out = new Bytes();
    for (const v of present) { const b = enc.encode(v); out.u32le(b.length); out.push(b); }
    return { data: out.concat(), type: 6, converted: 0 };  // BYTE_ARRAY, UTF8
  }
  const buf = new Uint8Array(present.length * 8);
  const view = new DataView(buf.buffer);
  present.forEach((v, i) => {
    if (kindName === "double") view.setFloat64(i * 8, Number(v), true);
    else if (kindName === "time_text") view.setBigInt64(i * 8, utcMs(v), true);
    else if (kindName === "epoch_ms") view.setBigInt64(i * 8, BigInt(Math.round(Number(v))), true);
    else view.setBigInt64(i * 8, BigInt(v), true);
  });
  if (kindName === "double") return { data: buf, type: 5 };  // DOUBLE
  return { data: buf, type: 2, converted: kindName === "int" ? undefined : 9 };  // INT64 (TIMESTAMP_MILLIS)
}

// Definition levels (1 present, 0 missing) as RLE runs, prefixed by their length, as data page v1 wants them.
function levels(values) {
  const runs = new Bytes();
  let i = 0;
  while (i < values.length) {
    const present = values[i] !== "";
    let j = i;
    while (j < values.length && (values[j] !== "") === present) j++;
    runs.varint((j - i) << 1);
    runs.byte(present ? 1 : 0);
    i = j;
  }
  const out = new Bytes();
  out.u32le(runs.length);
  out.push(runs.concat());
  return out.concat();
}

export function csvToParquet(text) {
  const lines = text.split("\n");
  const head = lines[0].split(",");
  const rows = [];
  for (const line of lines.slice(1)) {
    if (!line || line === "Summary") break;  // nfdump's trailer, which the original client drops too
    rows.push(line.split(","));
  }
  const file = new Bytes();
  file.push(enc.encode("PAR1"));
  const chunks = [], schema = [[[4, "bin", "schema"], [5, "i32", head.length]]];
  let total = 0;
  head.forEach((name, c) => {
    const values = rows.map((r) => (r[c] === undefined ? "" : r[c].trim()));
    const col = column(kind(name, values), values);
    const body = new Bytes();
    body.push(levels(values));
    body.push(col.data);
    const page = body.concat();
    const header = new Bytes();
    struct(header, [[1, "i32", 0], [2, "i32", page.length], [3, "i32", page.length],
      [5, "struct", [[1, "i32", values.length], [2, "i32", 0], [3, "i32", 3], [4, "i32", 3]]]]);
    const offset = file.length;
    file.push(header.concat());
    file.push(page);
    const size = header.length + page.length;
    total += size;
    chunks.push([[2, "i64", offset], [3, "struct", [[1, "i32", col.type], [2, "list", ["i32", [0, 3]]],
      [3, "list", ["bin", [name]]], [4, "i32", 0], [5, "i64", values.length], [6, "i64", size], [7, "i64", size],
      [9, "i64", offset]]]]);
    schema.push([[1, "i32", col.type], [3, "i32", 1], [4, "bin", name], [6, "i32", col.converted]]);
  });
  const meta = new Bytes();
  struct(meta, [[1, "i32", 1], [2, "list", ["struct", schema]], [3, "i64", rows.length],
    [4, "list", ["struct", [[[1, "list", ["struct", chunks]], [2, "i64", total], [3, "i64", rows.length]]]]],
    [6, "bin", "OpenTap web interface"]]);
  file.push(meta.concat());
  file.u32le(meta.length);
  file.push(enc.encode("PAR1"));
  return new Blob([file.concat()], { type: "application/vnd.apache.parquet" });
}

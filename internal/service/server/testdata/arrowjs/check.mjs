// Reads an Arrow IPC stream (a Sensorium query result) with apache-arrow and
// prints what the Go test checks, as JSON: the schema, the row count, and per
// column its null count, the sum of its values (a list column's values
// flattened; a string column's count of each value) and its first, second
// and last values (a list as an array).
import { readFileSync } from "node:fs";
import { tableFromIPC } from "apache-arrow";

const table = tableFromIPC(readFileSync(process.argv[2]));
const num = (v) =>
  v === null || typeof v === "string" ? v : typeof v === "object" && v[Symbol.iterator] ? Array.from(v, Number) : Number(v);
const out = {
  fields: table.schema.fields.map((f) => ({ name: f.name, type: String(f.type), unit: f.metadata.get("unit") ?? null })),
  rows: table.numRows,
  firstTimeNs: String(table.getChildAt(0).get(0)),
  sums: {},
  nulls: {},
  samples: {},
  strings: {}, // a string column's count of each value
};
for (const f of table.schema.fields.filter((f) => f.name !== "time")) {
  const col = table.getChild(f.name);
  let s = 0;
  let nulls = 0;
  for (const v of col) {
    const n = num(v);
    if (n === null) nulls++;
    else if (typeof n === "string") out.strings[f.name] = { ...out.strings[f.name], [n]: (out.strings[f.name]?.[n] ?? 0) + 1 };
    else if (Array.isArray(n)) for (const x of n) s += x;
    else s += n;
  }
  out.sums[f.name] = s;
  out.nulls[f.name] = nulls;
  out.samples[f.name] = [num(col.get(0)), num(col.get(1)), num(col.get(table.numRows - 1))];
}
console.log(JSON.stringify(out));

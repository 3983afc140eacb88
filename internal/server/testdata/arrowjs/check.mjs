// Reads an Arrow IPC stream (a Sensorium query result) with apache-arrow and
// prints what the Go test checks: the schema, the row count, and a few
// values, as JSON.
import { readFileSync } from "node:fs";
import { tableFromIPC } from "apache-arrow";

const table = tableFromIPC(readFileSync(process.argv[2]));
const out = {
  fields: table.schema.fields.map((f) => ({ name: f.name, type: String(f.type), unit: f.metadata.get("unit") ?? null })),
  rows: table.numRows,
  firstTimeNs: String(table.getChildAt(0).get(0)),
  sums: {},
  samples: {},
};
for (const f of table.schema.fields.slice(1)) {
  const col = table.getChild(f.name);
  let s = 0;
  for (const v of col) s += v;
  out.sums[f.name] = s;
  out.samples[f.name] = [col.get(0), col.get(1), col.get(table.numRows - 1)];
}
console.log(JSON.stringify(out));

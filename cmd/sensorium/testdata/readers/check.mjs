// Opens what `sensorium query` wrote with readers we did not write, and
// prints what the Go test checks, as JSON: apache-arrow reads argv[2] (a
// .arrow) and says whether it is an IPC file (footer and all), its batches,
// rows and fields; DuckDB reads argv[3] (a .parquet) and gives its row count
// and its columns' names and types.
import { readFileSync } from "node:fs";
import { RecordBatchReader, Table } from "apache-arrow";
import { DuckDBInstance } from "@duckdb/node-api";

const reader = RecordBatchReader.from(readFileSync(process.argv[2]));
reader.open();
const isFile = reader.isFile();
const table = new Table(reader.readAll());
const arrow = {
  isFile,
  batches: isFile ? reader.numRecordBatches : -1,
  rows: table.numRows,
  fields: table.schema.fields.map((f) => f.name),
};

const db = await DuckDBInstance.create(":memory:");
const con = await db.connect();
const pq = process.argv[3].replaceAll("'", "''");
const count = (await con.runAndReadAll(`SELECT count(*)::BIGINT AS n FROM read_parquet('${pq}')`)).getRowObjects();
const cols = (await con.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${pq}')`)).getRowObjects();
const parquet = {
  rows: Number(count[0].n),
  columns: cols.map((c) => c.column_name),
  types: cols.map((c) => String(c.column_type)),
};
console.log(JSON.stringify({ arrow, parquet }));

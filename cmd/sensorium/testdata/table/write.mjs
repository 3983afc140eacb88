// Writes the files TestImportTableFilesFromOtherWriters imports, with
// writers we did not write: apache-arrow (JavaScript) an Arrow IPC file and
// stream, DuckDB a Parquet file and CSV files.
//
//   node write.mjs DIR T0MS
//
// Every file holds rows k = 0 … n-1 of a 250 Hz signal from T0MS (ms since
// the Unix epoch): time T0MS + 4k ms; vib = k/4 (float); count = k % 1000
// (int16 where the format has it).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableToIPC, vectorFromArray, TimestampMillisecond, Float32, Int16, Table } from 'apache-arrow';
import { DuckDBInstance } from '@duckdb/node-api';

const [dir, t0arg] = process.argv.slice(2);
const t0 = Number(t0arg);
const n = 5000;

const time = vectorFromArray(Array.from({ length: n }, (_, k) => t0 + 4 * k), new TimestampMillisecond());
const vib = vectorFromArray(Float32Array.from({ length: n }, (_, k) => k / 4), new Float32());
const count = vectorFromArray(Int16Array.from({ length: n }, (_, k) => k % 1000), new Int16());
const table = new Table({ time, vib, count });
writeFileSync(join(dir, 'arrowjs.arrow'), tableToIPC(table, 'file'));
writeFileSync(join(dir, 'arrowjs.arrows'), tableToIPC(table, 'stream'));

const db = await DuckDBInstance.create(':memory:');
const con = await db.connect();
const rows = `SELECT epoch_ms(${t0} + 4 * i) AS ts, i / 4 AS vib, (i % 1000)::SMALLINT AS count FROM range(0, ${n}) t(i)`;
await con.run(`COPY (${rows}) TO '${join(dir, 'duckdb.parquet')}' (FORMAT parquet)`);
await con.run(`COPY (${rows}) TO '${join(dir, 'duckdb.csv')}' (HEADER)`);
await con.run(`SET TimeZone = 'UTC'`);
await con.run(`COPY (SELECT ts::TIMESTAMPTZ AS ts, vib, count FROM (${rows})) TO '${join(dir, 'duckdb-tz.csv')}' (HEADER)`);

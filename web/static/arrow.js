// A reader of Arrow IPC streams (the columnar format's streaming framing,
// https://arrow.apache.org/docs/format/Columnar.html#ipc-streaming-format)
// for the types Sensorium's API returns: Int (8–64 bit, signed or not),
// FloatingPoint (single, double), Timestamp, Bool, Binary, Utf8, List and
// FixedSizeList of those, with validity bitmaps, little-endian and
// uncompressed, as POST /v1/query writes them. Anything else (dictionaries,
// compression, big-endian, unions, structs …) is an error that names it:
// the console never silently shows a column it cannot read.
//
// It is written here rather than bundled from apache-arrow (about 200 KB
// minified) because the console needs a tenth of Arrow and nothing else:
// see docs/CONSOLE.md.

const TYPE = { Null: 1, Int: 2, FloatingPoint: 3, Binary: 4, Utf8: 5, Bool: 6, Timestamp: 10, List: 12, FixedSizeList: 16 };
const TYPE_NAMES = ['NONE', 'Null', 'Int', 'FloatingPoint', 'Binary', 'Utf8', 'Bool', 'Decimal', 'Date', 'Time', 'Timestamp',
  'Interval', 'List', 'Struct', 'Union', 'FixedSizeBinary', 'FixedSizeList', 'Map', 'Duration', 'LargeBinary', 'LargeUtf8',
  'LargeList', 'RunEndEncoded', 'BinaryView', 'Utf8View', 'ListView', 'LargeListView'];
const HEADER = { Schema: 1, DictionaryBatch: 2, RecordBatch: 3 };

// Table: a flatbuffers table at pos in a DataView.
class Table {
  constructor(dv, pos) {
    this.dv = dv;
    this.pos = pos;
    this.vt = pos - dv.getInt32(pos, true);
    this.vtLen = dv.getUint16(this.vt, true);
  }
  off(field) {
    const o = 4 + 2 * field;
    return o < this.vtLen ? this.dv.getUint16(this.vt + o, true) : 0;
  }
  u8(field, d = 0) { const o = this.off(field); return o ? this.dv.getUint8(this.pos + o) : d; }
  i16(field, d = 0) { const o = this.off(field); return o ? this.dv.getInt16(this.pos + o, true) : d; }
  i32(field, d = 0) { const o = this.off(field); return o ? this.dv.getInt32(this.pos + o, true) : d; }
  i64(field, d = 0) { const o = this.off(field); return o ? Number(this.dv.getBigInt64(this.pos + o, true)) : d; }
  bool(field) { return this.u8(field) !== 0; }
  ref(field) { // the position an offset field points to
    const o = this.off(field);
    if (!o) return 0;
    const p = this.pos + o;
    return p + this.dv.getUint32(p, true);
  }
  table(field) { const p = this.ref(field); return p ? new Table(this.dv, p) : null; }
  str(field) {
    const p = this.ref(field);
    if (!p) return null;
    const n = this.dv.getUint32(p, true);
    return new TextDecoder().decode(new Uint8Array(this.dv.buffer, this.dv.byteOffset + p + 4, n));
  }
  vec(field) { // [position of the first element, length]
    const p = this.ref(field);
    if (!p) return [0, 0];
    return [p + 4, this.dv.getUint32(p, true)];
  }
  tables(field) {
    const [p, n] = this.vec(field);
    const out = [];
    for (let i = 0; i < n; i++) {
      const e = p + 4 * i;
      out.push(new Table(this.dv, e + this.dv.getUint32(e, true)));
    }
    return out;
  }
}

function readMetadata(t, field) {
  const md = {};
  for (const kv of t.tables(field)) md[kv.str(0)] = kv.str(1);
  return md;
}

function readField(t) {
  const f = { name: t.str(0) || '', nullable: t.bool(1), typeId: t.u8(2), metadata: readMetadata(t, 6), children: [] };
  if (t.off(4)) throw new Error(`arrow: column ${f.name} is dictionary encoded, which this reader does not read`);
  const ty = t.table(3);
  switch (f.typeId) {
    case TYPE.Int: f.bitWidth = ty.i32(0); f.signed = ty.bool(1); break;
    case TYPE.FloatingPoint: f.precision = ty.i16(0); if (f.precision === 0) throw new Error(`arrow: column ${f.name} is half floats`); break;
    case TYPE.Timestamp: f.unit = ty.i16(0); f.timezone = ty.str(1); break;
    case TYPE.FixedSizeList: f.listSize = ty.i32(0); break;
    case TYPE.Null: case TYPE.Binary: case TYPE.Utf8: case TYPE.Bool: case TYPE.List: break;
    default: throw new Error(`arrow: column ${f.name} is of type ${TYPE_NAMES[f.typeId] || f.typeId}, which this reader does not read`);
  }
  f.children = t.tables(5).map(readField);
  return f;
}

function readSchema(t) {
  if (t.i16(0) !== 0) throw new Error('arrow: a big-endian stream');
  return { fields: t.tables(1).map(readField), metadata: readMetadata(t, 2) };
}

// The typed array constructor of a fixed-width type.
function arrayType(f) {
  switch (f.typeId) {
    case TYPE.Int:
      switch (f.bitWidth) {
        case 8: return f.signed ? Int8Array : Uint8Array;
        case 16: return f.signed ? Int16Array : Uint16Array;
        case 32: return f.signed ? Int32Array : Uint32Array;
        case 64: return f.signed ? BigInt64Array : BigUint64Array;
      }
      break;
    case TYPE.FloatingPoint: return f.precision === 1 ? Float32Array : Float64Array;
    case TYPE.Timestamp: return BigInt64Array;
  }
  throw new Error(`arrow: no array type for column ${f.name}`);
}

// view makes a typed array over body bytes, copying when they are not
// aligned to the element size.
function view(T, body, buf, count) {
  const off = body.byteOffset + buf.offset;
  if (off % T.BYTES_PER_ELEMENT === 0) return new T(body.buffer, off, count);
  return new T(body.buffer.slice(off, off + count * T.BYTES_PER_ELEMENT));
}

// Column: one field's values in one batch.
//   values: a typed array (numbers, BigInt64Array for 64-bit integers and
//   timestamps), an array of Uint8Array (Binary), of strings (Utf8), of
//   booleans (Bool), or for lists an array of child Columns' slices;
//   valid(i): false for a null.
function readColumn(f, nodes, bufs, body) {
  const node = nodes.shift();
  const n = node.length;
  const validity = bufs.shift();
  let bitmap = null;
  if (node.nullCount > 0 && validity.length > 0) bitmap = new Uint8Array(body.buffer, body.byteOffset + validity.offset, validity.length);
  const col = { field: f, length: n, hasNulls: bitmap !== null, valid: bitmap ? (i) => (bitmap[i >> 3] >> (i & 7)) & 1 : () => true };
  switch (f.typeId) {
    case TYPE.Null:
      bufs.unshift(validity); // Null has no buffers at all
      col.values = new Array(n).fill(null);
      col.valid = () => false;
      break;
    case TYPE.Int: case TYPE.FloatingPoint: case TYPE.Timestamp:
      col.values = view(arrayType(f), body, bufs.shift(), n);
      break;
    case TYPE.Bool: {
      const b = bufs.shift();
      const bits = new Uint8Array(body.buffer, body.byteOffset + b.offset, b.length);
      col.values = Array.from({ length: n }, (_, i) => ((bits[i >> 3] >> (i & 7)) & 1) === 1);
      break;
    }
    case TYPE.Binary: case TYPE.Utf8: {
      const offs = view(Int32Array, body, bufs.shift(), n + 1);
      const d = bufs.shift();
      const bytes = new Uint8Array(body.buffer, body.byteOffset + d.offset, d.length);
      const dec = f.typeId === TYPE.Utf8 ? new TextDecoder() : null;
      col.values = Array.from({ length: n }, (_, i) => {
        const s = bytes.subarray(offs[i], offs[i + 1]);
        return dec ? dec.decode(s) : s;
      });
      break;
    }
    case TYPE.List: {
      const offs = view(Int32Array, body, bufs.shift(), n + 1);
      const child = readColumn(f.children[0], nodes, bufs, body);
      col.child = child;
      col.offsets = offs;
      col.values = Array.from({ length: n }, (_, i) => sliceValues(child, offs[i], offs[i + 1]));
      break;
    }
    case TYPE.FixedSizeList: {
      const child = readColumn(f.children[0], nodes, bufs, body);
      col.child = child;
      col.values = Array.from({ length: n }, (_, i) => sliceValues(child, i * f.listSize, (i + 1) * f.listSize));
      break;
    }
  }
  return col;
}

function sliceValues(child, a, b) {
  const v = child.values;
  return v.subarray ? v.subarray(a, b) : v.slice(a, b);
}

function readBatch(t, schema, body) {
  if (t.off(3)) throw new Error('arrow: a compressed record batch, which this reader does not read');
  const length = t.i64(0);
  const dv = t.dv;
  const [np, nn] = t.vec(1);
  const nodes = [];
  for (let i = 0; i < nn; i++) nodes.push({ length: Number(dv.getBigInt64(np + 16 * i, true)), nullCount: Number(dv.getBigInt64(np + 16 * i + 8, true)) });
  const [bp, bn] = t.vec(2);
  const bufs = [];
  for (let i = 0; i < bn; i++) bufs.push({ offset: Number(dv.getBigInt64(bp + 16 * i, true)), length: Number(dv.getBigInt64(bp + 16 * i + 8, true)) });
  const columns = schema.fields.map((f) => readColumn(f, nodes, bufs, body));
  return { length, columns };
}

// readStream parses a whole IPC stream. It returns {schema, batches,
// complete}: complete is false when the stream ended without its
// end-of-stream marker (the server's query failed part way).
export function readStream(buffer) {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  let schema = null;
  const batches = [];
  while (pos + 4 <= bytes.length) {
    let len = dv.getInt32(pos, true);
    pos += 4;
    if (len === -1) { // continuation marker, then the length
      if (pos + 4 > bytes.length) break;
      len = dv.getInt32(pos, true);
      pos += 4;
    }
    if (len === 0) return { schema, batches, complete: true };
    if (pos + len > bytes.length) break;
    const meta = new DataView(bytes.buffer, bytes.byteOffset + pos, len);
    const msg = new Table(meta, meta.getUint32(0, true));
    pos += len;
    const headerType = msg.u8(1);
    const header = msg.table(2);
    const bodyLength = msg.i64(3);
    if (pos + bodyLength > bytes.length) break;
    const body = bytes.subarray(pos, pos + bodyLength);
    pos += bodyLength;
    switch (headerType) {
      case HEADER.Schema: schema = readSchema(header); break;
      case HEADER.RecordBatch:
        if (!schema) throw new Error('arrow: a record batch before the schema');
        batches.push(readBatch(header, schema, body));
        break;
      case HEADER.DictionaryBatch: throw new Error('arrow: a dictionary batch, which this reader does not read');
      default: throw new Error(`arrow: a message of type ${headerType}`);
    }
  }
  return { schema, batches, complete: false };
}

// toTable gathers a stream's batches into one column per field: typed
// arrays concatenated, times converted to ms since the epoch (Float64Array).
export function toTable(stream) {
  const { schema, batches } = stream;
  const rows = batches.reduce((n, b) => n + b.length, 0);
  const cols = {};
  if (!schema) return { schema: { fields: [], metadata: {} }, rows: 0, cols };
  schema.fields.forEach((f, i) => {
    const parts = batches.map((b) => b.columns[i]);
    if (f.typeId === TYPE.Timestamp || (f.typeId === TYPE.Int && f.bitWidth === 64)) {
      const out = new Float64Array(rows);
      const scale = f.typeId === TYPE.Timestamp ? [1e3, 1, 1e-3, 1e-6][f.unit] : 1;
      let o = 0;
      for (const p of parts) for (let j = 0; j < p.length; j++) out[o++] = Number(p.values[j]) * scale;
      cols[f.name] = out;
    } else if (f.typeId === TYPE.Int || f.typeId === TYPE.FloatingPoint) {
      const T = arrayType(f);
      const out = new T(rows);
      let o = 0;
      for (const p of parts) { out.set(p.values, o); o += p.length; }
      cols[f.name] = out;
    } else {
      cols[f.name] = parts.flatMap((p) => p.values);
    }
    // a column with nulls: NaN in a float copy where values are null
    const numeric = f.typeId === TYPE.Int || f.typeId === TYPE.FloatingPoint || f.typeId === TYPE.Timestamp;
    if (numeric && parts.some((p) => p.hasNulls)) {
      const out = Float64Array.from(cols[f.name], Number);
      let o = 0;
      for (const p of parts) for (let j = 0; j < p.length; j++, o++) if (!p.valid(j)) out[o] = NaN;
      cols[f.name] = out;
    }
  });
  return { schema, rows, cols };
}

export function unitOf(field) { return field.metadata.unit || ''; }
export { TYPE };

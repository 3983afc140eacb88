// JSON for the Go test: bigints as strings, byte arrays as base64, other
// typed arrays as arrays.
export function toJSON(key, value) {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (ArrayBuffer.isView(value)) return Array.from(value);
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  return value;
}

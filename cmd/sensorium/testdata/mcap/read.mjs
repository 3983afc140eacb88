// Reads an MCAP file with Foxglove's indexed reader (@mcap/core's
// McapIndexedReader: footer, summary and chunk indexes, every chunk's CRC
// checked) and decodes each message with the schema the file carries
// (@foxglove/rosmsg2-serialization for ros2msg/cdr, JSON for json). Prints
// a first line with the file's summary, then one JSON line per message in
// log-time order.
import { open } from "node:fs/promises";
import { McapIndexedReader } from "@mcap/core";
import { parse } from "@foxglove/rosmsg";
import { MessageReader } from "@foxglove/rosmsg2-serialization";
import zstd from "@foxglove/wasm-zstd";
import lz4 from "@foxglove/wasm-lz4";
import { toJSON } from "./json.mjs";

await zstd.isLoaded;
await lz4.isLoaded;
const fh = await open(process.argv[2], "r");
const size = BigInt((await fh.stat()).size);
const readable = {
  size: async () => size,
  read: async (offset, length) => {
    const buf = new Uint8Array(Number(length));
    const { bytesRead } = await fh.read(buf, 0, Number(length), Number(offset));
    if (bytesRead !== Number(length)) throw new Error(`short read at ${offset}`);
    return buf;
  },
};
const reader = await McapIndexedReader.Initialize({
  readable,
  decompressHandlers: {
    zstd: (data, decompressedSize) => zstd.decompress(data, Number(decompressedSize)),
    lz4: (data, decompressedSize) => lz4(data, Number(decompressedSize)),
  },
});
const compressions = [...new Set(reader.chunkIndexes.map((c) => c.compression))];
const out = [];
out.push(JSON.stringify({
  profile: reader.header.profile,
  chunks: reader.chunkIndexes.length,
  compressions,
  messageCount: reader.statistics?.messageCount,
  channelMessageCounts: Object.fromEntries(reader.statistics?.channelMessageCounts ?? []),
  messageIndexes: reader.chunkIndexes.every((c) => c.messageIndexOffsets.size > 0),
  schemas: [...reader.schemasById.values()].map((s) => ({ name: s.name, encoding: s.encoding })),
}, toJSON));
const decoders = new Map();
for await (const m of reader.readMessages({ validateCrcs: true })) {
  const ch = reader.channelsById.get(m.channelId);
  const schema = reader.schemasById.get(ch.schemaId);
  let message;
  if (ch.messageEncoding === "json") {
    message = JSON.parse(new TextDecoder().decode(m.data));
  } else if (ch.messageEncoding === "cdr" && schema?.encoding === "ros2msg") {
    if (!decoders.has(schema.id)) decoders.set(schema.id, new MessageReader(parse(new TextDecoder().decode(schema.data), { ros2: true })));
    message = decoders.get(schema.id).readMessage(m.data);
  } else {
    message = Buffer.from(m.data).toString("base64");
  }
  out.push(JSON.stringify({ topic: ch.topic, schemaName: schema?.name ?? "", schemaEncoding: schema?.encoding ?? "", messageEncoding: ch.messageEncoding, logTime: m.logTime, sequence: m.sequence, message }, toJSON));
}
await fh.close();
process.stdout.write(out.join("\n") + "\n");

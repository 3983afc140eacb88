// Writes the MCAP file `sensorium import` reads in the test, with Foxglove's
// own writer (@mcap/core) and ROS 2 serialisation
// (@foxglove/rosmsg2-serialization): one topic of each mapped type and two
// unmapped ones. argv: the file to write, its chunk compression (zstd,
// none or unchunked), a JSON file of H.264 access units (Annex B, base64) for the video
// topic, and where to write what was written as JSON lines (the test's
// expectations). Compression "unchunked" writes no chunks at all.
import { open, readFile, writeFile } from "node:fs/promises";
import { McapWriter } from "@mcap/core";
import { parse } from "@foxglove/rosmsg";
import { MessageWriter } from "@foxglove/rosmsg2-serialization";
import zstd from "@foxglove/wasm-zstd";
import { toJSON } from "./json.mjs";

const [out, compression, videoPath, expectedPath] = process.argv.slice(2);
await zstd.isLoaded;

const file = await open(out, "w");
let pos = 0n;
const writable = {
  position: () => pos,
  write: async (data) => {
    await file.write(data);
    pos += BigInt(data.byteLength);
  },
};
const writer = new McapWriter({
  writable,
  chunkSize: 4096,
  // "unchunked": records straight in the data section, no indexes.
  useChunks: compression !== "unchunked",
  useMessageIndex: compression !== "unchunked",
  useChunkIndex: compression !== "unchunked",
  compressChunk: compression === "zstd" ? (data) => ({ compression: "zstd", compressedData: zstd.compress(data, 3) }) : undefined,
});
await writer.start({ profile: "ros2", library: "sensorium test (@mcap/core)" });

const header = "std_msgs/Header header\n";
const deps = {
  Header: "================================================================================\nMSG: std_msgs/Header\nbuiltin_interfaces/Time stamp\nstring frame_id\n",
  Time: "================================================================================\nMSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n",
};
const schemas = {
  "sensor_msgs/msg/PointCloud2":
    header + "uint32 height\nuint32 width\nsensor_msgs/PointField[] fields\nbool is_bigendian\nuint32 point_step\nuint32 row_step\nuint8[] data\nbool is_dense\n" +
    deps.Header + deps.Time +
    "================================================================================\nMSG: sensor_msgs/PointField\nuint8 INT8=1\nuint8 UINT8=2\nuint8 INT16=3\nuint8 UINT16=4\nuint8 INT32=5\nuint8 UINT32=6\nuint8 FLOAT32=7\nuint8 FLOAT64=8\nstring name\nuint32 offset\nuint8 datatype\nuint32 count\n",
  "sensor_msgs/msg/Imu":
    header + "geometry_msgs/Quaternion orientation\nfloat64[9] orientation_covariance\ngeometry_msgs/Vector3 angular_velocity\nfloat64[9] angular_velocity_covariance\ngeometry_msgs/Vector3 linear_acceleration\nfloat64[9] linear_acceleration_covariance\n" +
    deps.Header + deps.Time +
    "================================================================================\nMSG: geometry_msgs/Quaternion\nfloat64 x\nfloat64 y\nfloat64 z\nfloat64 w\n" +
    "================================================================================\nMSG: geometry_msgs/Vector3\nfloat64 x\nfloat64 y\nfloat64 z\n",
  "sensor_msgs/msg/CompressedImage": header + "string format\nuint8[] data\n" + deps.Header + deps.Time,
  "foxglove_msgs/msg/CompressedVideo": "builtin_interfaces/Time timestamp\nstring frame_id\nuint8[] data\nstring format\n" + deps.Time,
  "std_msgs/msg/Float64": "float64 data\n",
  "std_msgs/msg/Int32": "# a count\nint32 data\n",
  "my_msgs/msg/Status": "uint8 OK=0\nstring text\nint32 level\nfloat64[] readings\n",
};

const expected = [];
const channels = {};
async function channel(topic, schemaName) {
  const schemaId = await writer.registerSchema({ name: schemaName, encoding: "ros2msg", data: new TextEncoder().encode(schemas[schemaName]) });
  const id = await writer.registerChannel({ topic, schemaId, messageEncoding: "cdr", metadata: new Map([["offered_qos_profiles", ""]]) });
  channels[topic] = { id, w: new MessageWriter(parse(schemas[schemaName], { ros2: true })), seq: 0, schemaName };
}
async function put(topic, logTime, message) {
  const c = channels[topic];
  await writer.addMessage({ channelId: c.id, sequence: ++c.seq, logTime, publishTime: logTime, data: c.w.writeMessage(message) });
  expected.push({ topic, schemaName: c.schemaName, logTime, message });
}
const t0 = 1764000000000000000n + 123456n; // ns, not on a millisecond
const stamp = (t) => ({ sec: Number(t / 1000000000n), nanosec: Number(t % 1000000000n) });

await channel("/velodyne_points", "sensor_msgs/msg/PointCloud2");
await channel("/imu/data", "sensor_msgs/msg/Imu");
await channel("/camera/image/compressed", "sensor_msgs/msg/CompressedImage");
await channel("/camera/video", "foxglove_msgs/msg/CompressedVideo");
await channel("/battery/voltage", "std_msgs/msg/Float64");
await channel("/counter", "std_msgs/msg/Int32");
await channel("/status", "my_msgs/msg/Status");
// A JSON topic without a ROS schema: unmapped, kept as it is.
const jsonSchema = await writer.registerSchema({ name: "Event", encoding: "jsonschema", data: new TextEncoder().encode('{"type":"object"}') });
const jsonChannel = await writer.registerChannel({ topic: "/events", schemaId: jsonSchema, messageEncoding: "json", metadata: new Map() });

const video = JSON.parse(await readFile(videoPath, "utf8"));
for (let i = 0; i < 40; i++) {
  const t = t0 + BigInt(i) * 10000000n + BigInt(i % 3) * 1000n; // 100 Hz, jittered
  await put("/imu/data", t, {
    header: { stamp: stamp(t), frame_id: "imu_link" },
    orientation: { x: 0, y: 0, z: 0, w: 1 },
    orientation_covariance: new Float64Array(9),
    angular_velocity: { x: 0.01 * i, y: -0.02 * i, z: 0.5 },
    angular_velocity_covariance: new Float64Array(9),
    linear_acceleration: { x: 0.1 + i / 7, y: -0.2, z: 9.80665 },
    linear_acceleration_covariance: new Float64Array(9),
  });
  if (i % 4 === 0) {
    await put("/battery/voltage", t + 5n, { data: 24.5 - i / 1000 });
    await put("/counter", t + 7n, { data: -5 + i });
  }
  if (i % 10 === 0) {
    // A sweep: 16 rings × 20 azimuths, Velodyne's layout (float intensity,
    // uint16 ring, float time), one point without a return.
    const n = 320, step = 24;
    const data = new Uint8Array(n * step);
    const dv = new DataView(data.buffer);
    for (let k = 0; k < n; k++) {
      const ring = k % 16, az = Math.floor(k / 16);
      const r = 5 + ring * 0.25 + i * 0.01;
      const x = k === 7 && i === 10 ? NaN : r * Math.cos(az * 0.3);
      dv.setFloat32(k * step, x, true);
      dv.setFloat32(k * step + 4, r * Math.sin(az * 0.3), true);
      dv.setFloat32(k * step + 8, (ring - 8) * 0.05, true);
      dv.setFloat32(k * step + 12, (k * 7) % 256 + 0.5, true);
      dv.setUint16(k * step + 16, ring, true);
      dv.setFloat32(k * step + 20, az * 5e-5, true);
    }
    await put("/velodyne_points", t, {
      header: { stamp: stamp(t), frame_id: "velodyne" }, height: 1, width: n,
      fields: [
        { name: "x", offset: 0, datatype: 7, count: 1 }, { name: "y", offset: 4, datatype: 7, count: 1 },
        { name: "z", offset: 8, datatype: 7, count: 1 }, { name: "intensity", offset: 12, datatype: 7, count: 1 },
        { name: "ring", offset: 16, datatype: 4, count: 1 }, { name: "time", offset: 20, datatype: 7, count: 1 },
      ],
      is_bigendian: false, point_step: step, row_step: n * step, data, is_dense: false,
    });
    await put("/camera/image/compressed", t + 1000000n, {
      header: { stamp: stamp(t), frame_id: "camera" }, format: "jpeg",
      data: Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, i, 1, 2, 3, 0xff, 0xd9]),
    });
    await put("/status", t + 2000000n, { text: `status ${i}`, level: i, readings: Float64Array.from([i, i / 2]) });
    const ev = { kind: "tick", i };
    await writer.addMessage({ channelId: jsonChannel, sequence: i, logTime: t + 3000000n, publishTime: t + 3000000n, data: new TextEncoder().encode(JSON.stringify(ev)) });
    expected.push({ topic: "/events", schemaName: "Event", logTime: t + 3000000n, message: ev });
  }
}
await channel("/camera/h264_image", "sensor_msgs/msg/CompressedImage");
for (let i = 0; i < video.length; i++) {
  const t = t0 + BigInt(i) * 40000000n; // 25 fps
  const data = Uint8Array.from(Buffer.from(video[i], "base64"));
  await put("/camera/video", t, { timestamp: stamp(t), frame_id: "camera", data, format: "h264" });
  // H.264 in CompressedImage, as some drivers send it.
  await put("/camera/h264_image", t + 500000n, { header: { stamp: stamp(t), frame_id: "camera2" }, format: "h264", data });
}
await writer.end();
await file.close();
await writeFile(expectedPath, expected.map((e) => JSON.stringify(e, toJSON)).join("\n") + "\n");

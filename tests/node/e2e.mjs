// Unchanged openai-node code against vidgate. Usage: node e2e.mjs <base_url> <api_key>
// Prints one JSON line with what it saw; the Python test asserts on it.
import OpenAI, { toFile } from "openai";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const out = {};

async function waitFor(id) {
  for (let i = 0; i < 400; i++) {
    const v = await client.videos.retrieve(id);
    if (v.status === "completed" || v.status === "failed") return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("timed out");
}

const created = await client.videos.create({
  prompt: "A calico cat playing a piano on stage",
  seconds: "2",
  size: "320x240",
  metadata: { sandbox_latency_ms: 0 },
});
out.created = { status: created.status, seconds: created.seconds, size: created.size, model: created.model };
const done = await waitFor(created.id);
out.done = { status: done.status, progress: done.progress, completed_at: done.completed_at };

const content = await client.videos.downloadContent(done.id);
const mp4 = Buffer.from(await content.arrayBuffer());
out.video = { type: content.headers.get("content-type"), bytes: mp4.length, ftyp: mp4.subarray(4, 8).toString() };
const thumb = await client.videos.downloadContent(done.id, { variant: "thumbnail" });
out.thumbnail = { type: thumb.headers.get("content-type") };

// the object forms the Python SDK cannot send: input_reference[image_url] and video[id]
const png = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAIAAAAlC+aJAAAAYElEQVR4nO3PQQ0AIBDAsAP/wpCFCB4NyapgW3Pma1sHvGpAa0BrQGtAa0BrQGtAa0BrQGtAa0BrQGtAa0BrQGtAa0BrQGtAa0BrQGtAa0BrQGtAa0BrQGtAa0BrQGtAu/OPAUjI8SmRAAAAAElFTkSuQmCC",
  "base64",
);
const withRef = await client.videos.create({
  prompt: "from a data URL",
  seconds: "1",
  size: "64x64",
  input_reference: { image_url: `data:image/png;base64,${png.toString("base64")}` },
});
out.image_url = (await waitFor(withRef.id)).status;
const upload = await client.videos.create({
  prompt: "from an upload",
  seconds: "1",
  size: "64x64",
  input_reference: await toFile(png, "ref.png", { type: "image/png" }),
});
out.upload = (await waitFor(upload.id)).status;
const ext = await client.videos.extend({ prompt: "more", seconds: "1", video: { id: done.id } });
out.extend = { status: (await waitFor(ext.id)).status, seconds: (await client.videos.retrieve(ext.id)).seconds };
const remix = await client.videos.remix(done.id, { prompt: "again" });
out.remix = remix.remixed_from_video_id === done.id;

const ids = [];
for await (const v of client.videos.list({ limit: 2, order: "asc" })) ids.push(v.id);
out.listed = ids.length;

try {
  await client.videos.create({ prompt: "x", seconds: "99" });
} catch (e) {
  out.error = { status: e.status, code: e.code, param: e.param, requestID: e.requestID ?? null };
}
const deleted = await client.videos.delete(done.id);
out.deleted = deleted.deleted;
try {
  await client.videos.retrieve(done.id);
} catch (e) {
  out.after_delete = e.status;
}
console.log(JSON.stringify(out));

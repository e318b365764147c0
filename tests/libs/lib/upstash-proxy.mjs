// A minimal Upstash-dialect HTTP front end for redis-server, used only by reference runs
// (STAYKV_LIBS_TARGET=redis) so the @upstash/* suites can run against real Redis too.
// It speaks just what @upstash/redis sends: POST / (one command), POST /pipeline and
// POST /multi-exec (arrays of commands), Bearer auth, `Upstash-Encoding: base64`.
// StayKV's own HTTP API is what the suites test; this is not a model of it.
import http from "node:http";
import IORedis from "ioredis";

function encodeResult(value, base64) {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return base64 ? value.toString("base64") : value.toString("utf8");
  if (typeof value === "string") return base64 ? Buffer.from(value).toString("base64") : value;
  if (Array.isArray(value)) return value.map((v) => encodeResult(v, base64));
  return value; // integers
}

const toArgs = (command) => command.map((a) => (typeof a === "string" ? a : JSON.stringify(a)));

/** Start the proxy on a free port; resolves to { url, close() }. */
export async function startUpstashProxy({ port, host = "127.0.0.1", token }) {
  const conn = new IORedis({ host, port, maxRetriesPerRequest: null });
  const server = http.createServer(async (req, res) => {
    const send = (status, body) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `Bearer ${token}`) return send(401, { error: "Unauthorized" });
    const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    let body = "";
    for await (const chunk of req) body += chunk;
    let parsed;
    try {
      parsed = JSON.parse(body);
    } catch (e) {
      return send(400, { error: `ERR bad JSON: ${e.message}` });
    }
    const url = new URL(req.url, "http://x");
    if (url.pathname === "/") {
      const [name, ...args] = toArgs(parsed);
      try {
        return send(200, { result: encodeResult(await conn.callBuffer(name, ...args), base64) });
      } catch (e) {
        return send(400, { error: e.message });
      }
    }
    if (url.pathname === "/pipeline" || url.pathname === "/multi-exec") {
      const batch = url.pathname === "/pipeline" ? conn.pipeline() : conn.multi();
      for (const command of parsed) {
        const [name, ...args] = toArgs(command);
        batch.callBuffer(name, ...args);
      }
      try {
        const replies = await batch.exec();
        return send(
          200,
          replies.map(([err, value]) => (err ? { error: err.message } : { result: encodeResult(value, base64) })),
        );
      } catch (e) {
        return send(400, { error: e.message });
      }
    }
    return send(404, { error: `no route ${url.pathname}` });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: async () => {
      conn.disconnect();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

// Starts the server the library suites run against, one per test file: the workspace's
// `staykv` binary (built by `cargo build`; STAYKV_BIN overrides) with RESP and the HTTP API
// on free loopback ports and a temporary --dir, killed at the end.
//
// Reference runs: STAYKV_LIBS_TARGET=redis runs the same suites against Debian's
// redis-server 7.0 (`--save '' --appendonly no`) instead, with a minimal Upstash-dialect
// HTTP front end (lib/upstash-proxy.mjs) in front of it for @upstash/redis. A suite that
// passes there and fails against StayKV points at a StayKV difference.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import IORedis from "ioredis";
import { startUpstashProxy } from "./upstash-proxy.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
export const STAYKV_BIN = process.env.STAYKV_BIN ?? path.resolve(here, "../../../target/debug/staykv");
export const TARGET = process.env.STAYKV_LIBS_TARGET === "redis" ? "redis" : "staykv";
export const HTTP_TOKEN = "libs-test-token";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** PING on a raw socket: the first reply line, or null. */
function ping(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: "127.0.0.1" });
    let data = "";
    const done = (v) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(1000, () => done(null));
    sock.on("error", () => done(null));
    sock.on("connect", () => sock.write("PING\r\n"));
    sock.on("data", (c) => {
      data += c.toString("latin1");
      if (data.includes("\r\n")) done(data.split("\r\n")[0]);
    });
  });
}

async function httpReady(url) {
  try {
    const res = await fetch(`${url}/healthz`);
    return res.status === 200;
  } catch {
    return false;
  }
}

/**
 * Start the server under test.
 * @param {{ http?: boolean }} opts  http: also serve the Upstash-dialect HTTP API.
 * @returns {Promise<{ target: string, port: number, host: string, httpUrl: string | null,
 *   token: string, log: () => string, stop: () => Promise<void> }>}
 */
export async function startServer({ http = false } = {}) {
  if (TARGET === "staykv" && !existsSync(STAYKV_BIN)) {
    throw new Error(`${STAYKV_BIN} does not exist: run \`cargo build\` first (or set STAYKV_BIN)`);
  }
  if (TARGET === "redis" && spawnSync("sh", ["-c", "command -v redis-server"]).status !== 0) {
    throw new Error("STAYKV_LIBS_TARGET=redis needs redis-server (apt-get install redis-server)");
  }
  const root = mkdtempSync(path.join(tmpdir(), `staykv-libs-${TARGET}-`));
  const logPath = path.join(root, "server.log");
  const log = () => (existsSync(logPath) ? readFileSync(logPath, "utf8") : "");
  for (let attempt = 0; attempt < 8; attempt++) {
    const port = await freePort();
    const httpPort = http && TARGET === "staykv" ? await freePort() : 0;
    const args =
      TARGET === "staykv"
        ? ["--port", String(port), "--http-port", String(httpPort), "--http-token", HTTP_TOKEN,
          "--dir", path.join(root, "data")]
        : ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", root];
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("STAYKV_")));
    const fd = openSync(logPath, "a");
    const child = spawn(TARGET === "staykv" ? STAYKV_BIN : "redis-server", args, {
      stdio: ["ignore", fd, fd],
      env: { ...env, NO_COLOR: "1" },
    });
    closeSync(fd);
    let exited = null;
    child.on("exit", (code, signal) => {
      exited = { code, signal };
    });
    const kill = async () => {
      if (exited === null) {
        const gone = new Promise((r) => child.once("exit", r));
        child.kill("SIGKILL");
        await gone;
      }
    };
    const deadline = Date.now() + 60_000;
    while (exited === null && Date.now() < deadline) {
      const ready =
        (await ping(port)) === "+PONG" && (httpPort === 0 || (await httpReady(`http://127.0.0.1:${httpPort}`)));
      if (ready) {
        let httpUrl = httpPort ? `http://127.0.0.1:${httpPort}` : null;
        let proxy = null;
        if (http && TARGET === "redis") {
          proxy = await startUpstashProxy({ port, token: HTTP_TOKEN });
          httpUrl = proxy.url;
        }
        const connections = new Set();
        return {
          target: TARGET,
          connections,
          port,
          host: "127.0.0.1",
          httpUrl,
          token: HTTP_TOKEN,
          log,
          stop: async () => {
            // Connections handed to libraries are theirs to use but ours to close: bullmq,
            // for one, never closes an ioredis instance it was given.
            for (const conn of connections) conn.disconnect();
            if (proxy) await proxy.close();
            await kill();
            rmSync(root, { recursive: true, force: true });
          },
        };
      }
      await sleep(25);
    }
    if (exited === null) {
      await kill();
      throw new Error(`${TARGET} did not become ready within 60 s; log:\n${log()}`);
    }
    if (!/in use|cannot listen/i.test(log())) {
      throw new Error(`${TARGET} exited (${JSON.stringify(exited)}) before it was ready; log:\n${log()}`);
    }
  }
  throw new Error(`${TARGET}: no free port after 8 attempts; log:\n${log()}`);
}

/**
 * An ioredis connection to the server (with the options bullmq requires for workers),
 * disconnected by `server.stop()`.
 */
export function ioredis(server, extra = {}) {
  const conn = new IORedis({ host: server.host, port: server.port, maxRetriesPerRequest: null, ...extra });
  server.connections.add(conn);
  return conn;
}

/**
 * What the server lacks to run a library: the subset of `commands` that COMMAND INFO does
 * not know, and the error of `EVAL "return 1" 0` (null when scripting works).
 */
export async function probe(server, commands) {
  const conn = ioredis(server, { lazyConnect: true, enableOfflineQueue: true });
  try {
    await conn.connect();
    const names = [...new Set(commands.map((c) => c.toLowerCase()))].sort();
    const info = await conn.call("COMMAND", "INFO", ...names);
    const missing = names.filter((_, i) => !info[i]).map((n) => n.toUpperCase());
    let scripting = null;
    try {
      const one = await conn.call("EVAL", "return 1", "0");
      if (one !== 1) scripting = `EVAL "return 1" 0 answered ${JSON.stringify(one)} instead of 1`;
    } catch (e) {
      scripting = `EVAL "return 1" 0 failed: ${e.message}`;
    }
    return { missing, scripting };
  } finally {
    conn.disconnect();
  }
}

/**
 * Throws a readable error when the server lacks what `library` needs (see `probe`), so each
 * test fails at once with the reason instead of hanging in the library's retry loops.
 */
export async function requireSupport(server, library, commands) {
  const { missing, scripting } = await probe(server, commands);
  const problems = [];
  if (scripting) problems.push(`Lua scripting is not available (${scripting})`);
  if (missing.length) problems.push(`the server lacks ${missing.join(", ")}`);
  if (problems.length) {
    throw new Error(
      `${server.target} cannot run ${library}: ${problems.join("; ")}. ` +
        `${library} calls these unchanged; this test passes once the server has them.`,
    );
  }
}

/** Every `redis.call("NAME"` / `rcall("NAME"` in the Lua files under `dir` (recursively). */
export function luaCommandsIn(dir) {
  const names = new Set();
  const walk = (d) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.name.endsWith(".lua")) {
        const text = readFileSync(p, "utf8");
        for (const m of text.matchAll(/\b(?:rcall|redis\.call|redis\.pcall)\(\s*["']([A-Za-z]+)["']/g)) {
          names.add(m[1].toUpperCase());
        }
      }
    }
  };
  walk(dir);
  return [...names].sort();
}

/** Resolves when `predicate()` is true (polled every 20 ms), rejects after `ms`. */
export async function waitFor(predicate, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

export { sleep };

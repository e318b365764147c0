// Starts the real `staykv` binary for one test file: a free HTTP port, RESP off, a fresh
// data directory, a full and a read-only token. Build it first (`cargo build`); set
// STAYKV_BIN to test another binary.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const BIN = process.env.STAYKV_BIN ?? join(root, "target/debug/staykv");
export const TOKEN = "http-test-full-token";
export const READONLY_TOKEN = "http-test-readonly-token";

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Start staykv (with `extraArgs` after the usual flags); resolves to
 * { url, token, readonlyToken, stop(), log() } once /healthz answers.
 */
export async function startServer(extraArgs = []) {
  if (!existsSync(BIN)) {
    throw new Error(`${BIN} does not exist: build it first (cargo build), or set STAYKV_BIN`);
  }
  const dir = mkdtempSync(join(tmpdir(), "staykv-npm-"));
  const logPath = join(dir, "server.log");
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const out = openSync(logPath, "a");
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("STAYKV_")));
    const child = spawn(
      BIN,
      ["--port", "0", "--http-port", String(port), "--dir", join(dir, "data"),
        "--http-token", TOKEN, "--http-readonly-token", READONLY_TOKEN, ...extraArgs],
      { stdio: ["ignore", out, out], env },
    );
    let exited = false;
    child.once("exit", () => { exited = true; });
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    while (!exited && Date.now() < deadline) {
      try {
        const res = await fetch(`${url}/healthz`);
        if (res.status === 200) {
          const log = () => readFileSync(logPath, "utf8");
          const stop = async () => {
            if (!exited) {
              child.kill("SIGTERM");
              await new Promise((r) => child.once("exit", r));
            }
            rmSync(dir, { recursive: true, force: true });
          };
          return { url, token: TOKEN, readonlyToken: READONLY_TOKEN, stop, log };
        }
      } catch {
        // not listening yet
      }
      await sleep(25);
    }
    if (!exited) child.kill("SIGKILL");
  }
  throw new Error(`staykv did not start; log:\n${readFileSync(logPath, "utf8")}`);
}

/** Raw request to POST /: the parsed JSON body and status. */
export async function raw(server, command, { token = server.token, path = "/" } = {}) {
  const res = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    body: JSON.stringify(command),
  });
  return { status: res.status, body: await res.json() };
}

/** Which of `names` the server has (COMMAND INFO answers null for the others). */
export async function commandsPresent(server, names) {
  const { body } = await raw(server, ["COMMAND", "INFO", ...names]);
  const present = new Set();
  (body.result ?? []).forEach((info, i) => { if (info) present.add(names[i]); });
  return present;
}

/** node:test `skip` option: false when every command exists, else the printed reason. */
export function skipUnless(present, ...names) {
  const missing = names.filter((n) => !present.has(n));
  return missing.length === 0 ? false : `the server lacks ${missing.map((n) => n.toUpperCase()).join(", ")}`;
}

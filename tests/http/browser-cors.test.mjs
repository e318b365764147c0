// @upstash/redis in a web page, in Debian's Chromium (playwright-core), calling a staykv
// started with --http-cors-origin: the page's origin is allowed and can use the API with a
// token, a page of another origin is stopped by the browser.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import http from "node:http";
import { dirname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer, raw } from "./lib/server.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
// Headless Debian Chromium without the sandbox (tests run as root) or background traffic.
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const modules = join(dirname(fileURLToPath(import.meta.url)), "node_modules");

// The page loads the client's browser-ready ESM build (the Cloudflare one: fetch only)
// straight from node_modules; its one bare import is mapped.
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>staykv from a page</title>
<script type="importmap">{"imports": {"uncrypto": "/m/uncrypto/dist/crypto.web.mjs"}}</script>
<script type="module">
  import { Redis } from "/m/@upstash/redis/cloudflare.mjs";
  window.Redis = Redis;
</script>`;

/** Serves the page at / and node_modules files under /m/. */
function pageServer() {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
      return;
    }
    const file = normalize(join(modules, path.replace(/^\/m\//, "")));
    if (!path.startsWith("/m/") || !file.startsWith(modules + "/") || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/javascript" }).end(readFileSync(file));
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server)));
}

const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (scripts/test installs Debian's chromium)`;
if (skip) console.log(`# skipping the browser CORS tests: ${skip}`);

let pages, staykv, browser, allowed, other;

before(async () => {
  if (skip) return;
  pages = await pageServer();
  const port = pages.address().port;
  // The same page server under two names: two origins, one of them allowed.
  allowed = `http://127.0.0.1:${port}`;
  other = `http://localhost:${port}`;
  staykv = await startServer(["--http-cors-origin", allowed]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await staykv?.stop();
  pages?.close();
});

/** Opens `origin`'s page and runs `body(Redis, url, token, readonlyToken)` in it. */
async function inPage(origin, body) {
  const page = await browser.newPage();
  try {
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => typeof window.Redis === "function");
    const source = `(${body})(window.Redis, ${JSON.stringify(staykv.url)}, ${JSON.stringify(staykv.token)}, ${JSON.stringify(staykv.readonlyToken)})`;
    return await page.evaluate(source);
  } finally {
    await page.close();
  }
}

test("a page of an allowed origin uses the API with @upstash/redis's defaults", { skip }, async () => {
  const result = await inPage(allowed, async (Redis, url, token, readonlyToken) => {
    const redis = new Redis({ url, token, enableTelemetry: false });
    const session = { userId: 7, name: "Zoë", roles: ["reader"] };
    const set = await redis.set("browser:session", session, { ex: 3600 });
    const [got, ttl] = await Promise.all([redis.get("browser:session"), redis.ttl("browser:session")]);
    const reader = new Redis({ url, token: readonlyToken, enableTelemetry: false });
    const readBack = await reader.get("browser:session");
    const refused = await reader.set("browser:other", "x").then(() => "accepted", (e) => String(e));
    return { set, got, ttl, readBack, refused };
  });
  assert.equal(result.set, "OK");
  assert.deepEqual(result.got, { userId: 7, name: "Zoë", roles: ["reader"] });
  assert.ok(result.ttl > 3500 && result.ttl <= 3600, `ttl ${result.ttl}`);
  assert.deepEqual(result.readBack, result.got);
  assert.match(result.refused, /NOPERM|read-only|readonly/i);
  // The write is in the store, as any other client sees it.
  const { body } = await raw(staykv, ["GET", "browser:session"]);
  assert.deepEqual(JSON.parse(body.result), result.got);
});

test("a page of another origin is stopped by the browser", { skip }, async () => {
  const outcome = await inPage(other, async (Redis, url, token) => {
    const redis = new Redis({ url, token, enableTelemetry: false, retry: false });
    return redis.get("browser:session").then((v) => `read ${JSON.stringify(v)}`, (e) => `failed: ${e}`);
  });
  assert.match(outcome, /^failed: .*fetch/i);
});

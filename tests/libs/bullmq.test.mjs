// bullmq (with ioredis) unchanged against a live StayKV: jobs added and processed by a Worker,
// delayed jobs, a failing job retried with backoff until it succeeds, one that runs out of
// attempts, completion events through QueueEvents, and the queue's counts.
//
// BullMQ runs nearly every operation as a Lua script (EVALSHA), writes its events to a
// stream (XADD/XTRIM) that QueueEvents reads with XREAD BLOCK, and wakes workers with
// BZPOPMIN. Each test first checks the server has all of that and fails with the list of
// what is missing otherwise.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { createRequire } from "node:module";
import { Queue, QueueEvents, Worker } from "bullmq";
import { startServer, ioredis, requireSupport, luaCommandsIn, waitFor } from "./lib/server.mjs";

const require = createRequire(import.meta.url);
const bullmqDir = path.dirname(require.resolve("bullmq/package.json"));

// Everything bullmq sends: what its Lua scripts call, plus what its JavaScript calls directly.
const BULLMQ_COMMANDS = [
  ...luaCommandsIn(path.join(bullmqDir, "dist/esm/commands")),
  "EVALSHA", "EVAL", "BZPOPMIN", "XREAD", "XADD", "XTRIM", "INFO", "CLIENT",
];

const TIMEOUT = 60_000;
let server;
const closers = [];

before(async () => {
  server = await startServer();
});

after(async () => {
  // Close in reverse order of creation (workers before their queues), then stop the server.
  for (const close of closers.reverse()) {
    await Promise.race([close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  }
  await server?.stop();
});

/** A fresh queue name, with its Queue, QueueEvents and the connections they use. */
async function openQueue() {
  await requireSupport(server, "bullmq", BULLMQ_COMMANDS);
  const name = `q-${randomUUID()}`;
  const queue = new Queue(name, { connection: ioredis(server) });
  closers.push(() => queue.close());
  const events = new QueueEvents(name, { connection: ioredis(server) });
  closers.push(() => events.close());
  await queue.waitUntilReady();
  await events.waitUntilReady();
  return { name, queue, events };
}

function startWorker(name, processor, opts = {}) {
  const worker = new Worker(name, processor, { connection: ioredis(server), ...opts });
  closers.push(() => worker.close());
  worker.on("error", (e) => {
    worker.lastError = e;
  });
  return worker;
}

/** Collects QueueEvents' `completed` events: jobId -> returnvalue. */
function collectCompleted(events) {
  const seen = new Map();
  events.on("completed", ({ jobId, returnvalue }) => seen.set(jobId, returnvalue));
  return seen;
}

test("the server has every command bullmq calls", { timeout: TIMEOUT }, async () => {
  await requireSupport(server, "bullmq", BULLMQ_COMMANDS);
});

test("jobs are added, processed by a worker, reported completed and counted", { timeout: TIMEOUT }, async () => {
  const { name, queue, events } = await openQueue();
  const completed = collectCompleted(events);
  const jobs = await queue.addBulk(
    Array.from({ length: 5 }, (_, i) => ({ name: "double", data: { n: i, text: `ünïcode ✓ ${i}` } })),
  );
  jobs.push(await queue.add("double", { n: 5, text: "single" }, { jobId: "custom-id-5" }));
  assert.equal(jobs[5].id, "custom-id-5");
  assert.deepEqual(await queue.getJobCounts("waiting", "active", "completed", "failed", "delayed"), {
    waiting: 6, active: 0, completed: 0, failed: 0, delayed: 0,
  });
  const fetched = await queue.getJob(jobs[2].id);
  assert.deepEqual(fetched.data, { n: 2, text: "ünïcode ✓ 2" });

  const processed = [];
  const worker = startWorker(name, async (job) => {
    processed.push(job.id);
    return { doubled: job.data.n * 2, text: job.data.text };
  });
  // Completion events, one per job, carrying the return value.
  await waitFor(() => completed.size === 6, 30_000, "6 completed events");
  for (const job of jobs) {
    assert.deepEqual(completed.get(job.id), { doubled: job.data.n * 2, text: job.data.text });
  }
  assert.deepEqual([...processed].sort(), jobs.map((j) => j.id).sort());
  // Jobs ran in insertion order (one worker, concurrency 1).
  assert.deepEqual(processed, jobs.map((j) => j.id));
  assert.deepEqual(await queue.getJobCounts("waiting", "active", "completed", "failed", "delayed"), {
    waiting: 0, active: 0, completed: 6, failed: 0, delayed: 0,
  });
  const done = await queue.getJob(jobs[0].id);
  assert.deepEqual(done.returnvalue, { doubled: 0, text: "ünïcode ✓ 0" });
  assert.equal(await done.getState(), "completed");
  assert.ok(done.finishedOn >= done.processedOn && done.processedOn >= done.timestamp);
  // waitUntilFinished resolves through QueueEvents for a job added while the worker runs.
  const late = await queue.add("double", { n: 21, text: "late" });
  assert.deepEqual(await late.waitUntilFinished(events, 20_000), { doubled: 42, text: "late" });
  assert.equal(worker.lastError, undefined, `worker error: ${worker.lastError}`);
});

test("a delayed job waits for its delay, then runs", { timeout: TIMEOUT }, async () => {
  const { name, queue, events } = await openQueue();
  const completed = collectCompleted(events);
  const DELAY = 1500;
  const runAt = new Map();
  startWorker(name, async (job) => {
    runAt.set(job.id, Date.now());
    return job.data.label;
  });
  const added = Date.now();
  const delayed = await queue.add("later", { label: "delayed" }, { delay: DELAY });
  const now = await queue.add("now", { label: "immediate" });
  assert.equal(await delayed.getState(), "delayed");
  await waitFor(() => completed.has(now.id), 20_000, "the immediate job");
  // The immediate job ran while the delayed one still waits.
  assert.equal(completed.has(delayed.id), false, "the delayed job ran before its delay");
  const counts = await queue.getJobCounts("delayed", "completed");
  if (Date.now() - added < DELAY - 200) assert.deepEqual(counts, { delayed: 1, completed: 1 });
  await waitFor(() => completed.has(delayed.id), 20_000, "the delayed job");
  assert.equal(completed.get(delayed.id), "delayed");
  const ranAfter = runAt.get(delayed.id) - added;
  assert.ok(ranAfter >= DELAY - 50, `the delayed job ran ${ranAfter} ms after it was added (delay ${DELAY})`);
  assert.ok(ranAfter < DELAY + 10_000, `the delayed job ran ${ranAfter} ms after it was added`);
  const job = await queue.getJob(delayed.id);
  assert.ok(job.processedOn - job.timestamp >= DELAY - 50, `processedOn - timestamp = ${job.processedOn - job.timestamp}`);
  assert.deepEqual(await queue.getJobCounts("delayed", "waiting", "completed"), { delayed: 0, waiting: 0, completed: 2 });
});

test("a failing job is retried with backoff and then succeeds", { timeout: TIMEOUT }, async () => {
  const { name, queue, events } = await openQueue();
  const completed = collectCompleted(events);
  const BACKOFF = 400;
  const attempts = [];
  const failures = [];
  const worker = startWorker(name, async (job) => {
    attempts.push({ at: Date.now(), attemptsMade: job.attemptsMade });
    if (attempts.length < 3) throw new Error(`transient failure ${attempts.length}`);
    return "third time lucky";
  });
  worker.on("failed", (job, err) => failures.push({ id: job.id, message: err.message }));
  const job = await queue.add("flaky", { x: 1 }, { attempts: 5, backoff: { type: "fixed", delay: BACKOFF } });
  await waitFor(() => completed.has(job.id), 30_000, "the retried job to complete");
  assert.equal(completed.get(job.id), "third time lucky");
  assert.deepEqual(failures, [
    { id: job.id, message: "transient failure 1" },
    { id: job.id, message: "transient failure 2" },
  ]);
  assert.deepEqual(attempts.map((a) => a.attemptsMade), [0, 1, 2]);
  for (let i = 1; i < attempts.length; i++) {
    const gap = attempts[i].at - attempts[i - 1].at;
    assert.ok(gap >= BACKOFF - 50, `attempt ${i + 1} started ${gap} ms after attempt ${i} (backoff ${BACKOFF})`);
  }
  const done = await queue.getJob(job.id);
  assert.equal(await done.getState(), "completed");
  assert.equal(done.attemptsMade, 3);
  assert.equal(done.returnvalue, "third time lucky");
  assert.deepEqual(done.stacktrace.length, 2);
  assert.deepEqual(await queue.getJobCounts("completed", "failed", "delayed", "waiting"), {
    completed: 1, failed: 0, delayed: 0, waiting: 0,
  });
});

test("a job that fails every attempt ends failed, with its reason and the failed event", { timeout: TIMEOUT }, async () => {
  const { name, queue, events } = await openQueue();
  const failedEvents = [];
  events.on("failed", ({ jobId, failedReason }) => failedEvents.push({ jobId, failedReason }));
  let runs = 0;
  startWorker(name, async () => {
    runs += 1;
    throw new Error(`always fails (${runs})`);
  });
  const job = await queue.add("doomed", {}, { attempts: 3, backoff: { type: "exponential", delay: 100 } });
  await waitFor(async () => (await queue.getJobCounts("failed")).failed === 1, 30_000, "the job to end failed");
  assert.equal(runs, 3);
  const failed = await queue.getJob(job.id);
  assert.equal(await failed.getState(), "failed");
  assert.equal(failed.failedReason, "always fails (3)");
  assert.equal(failed.attemptsMade, 3);
  // QueueEvents reports the final failure (retried attempts are not "failed" events).
  await waitFor(() => failedEvents.length > 0, 10_000, "the failed event");
  assert.deepEqual(failedEvents, [{ jobId: job.id, failedReason: "always fails (3)" }]);
  assert.deepEqual((await queue.getFailed()).map((j) => j.id), [job.id]);
  // Retrying a failed job by hand puts it back in the queue.
  await failed.retry();
  await waitFor(() => runs === 4, 10_000, "the manual retry");
});

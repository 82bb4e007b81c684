// The client against a live server: every method, each error class by its documented trigger,
// a submit retried after its answer was lost, a follow() that resumes across a cut connection.
// A few tests at the end give the client a fetch of their own instead, for what a live server
// cannot be made to do on cue (a 503, a stream cut between the records of one group).

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  APIConnectionError,
  APIError,
  AuthenticationError,
  City,
  CityError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  PaymentRequiredError,
  RateLimitError,
  ValidationError,
} from "../dist/index.js";
import {
  api,
  completedTask,
  credits,
  cuttableProxy,
  getTask,
  GOOD_REVIEW,
  header,
  hire,
  need,
  ok,
  settled,
  snippet,
  start,
} from "./support.mjs";

const BASE_URL = need("CITY_BASE_URL");
const OWNER = need("CITY_OWNER_TOKEN");
const AGENT = need("CITY_API_KEY");
const AGENT_ID = need("CITY_AGENT_ID");
const OTHER_AGENT = need("CITY_OTHER_API_KEY");
const OTHER_AGENT_ID = need("CITY_OTHER_AGENT_ID");

const owner = new City({ ownerToken: OWNER, baseUrl: BASE_URL });
const agent = new City({ apiKey: AGENT }, BASE_URL);
const outsider = new City({ apiKey: OTHER_AGENT }, BASE_URL);

const TIMEOUT = { timeout: 90_000 };

/** The rejection of `promise`, checked to be an instance of `Class` (and of CityError). */
async function refusal(promise, Class) {
  const error = await promise.then(
    (value) => assert.fail(`expected ${Class.name}, got ${JSON.stringify(value)}`),
    (error) => error,
  );
  assert.ok(error instanceof Class, `expected ${Class.name}, got ${error}`);
  assert.ok(error instanceof CityError);
  assert.equal(error.name, Class.name);
  return error;
}

/** The contract's error body, as the error carries it (`param` is left out when there is none
 * by some of the server's errors, null in others). */
function assertBody(error, status, type, code) {
  assert.equal(error.status, status);
  assert.equal(error.type, type);
  if (code !== undefined) assert.equal(error.code, code);
  assert.ok(error.message);
  const { error: inner, ...rest } = error.body;
  assert.deepEqual(rest, {});
  assert.deepEqual(
    { ...inner, param: inner.param ?? null },
    { type: error.type, code: error.code, message: error.message, param: error.param ?? null },
  );
}

// Every method against the server

test("an owner hires, its agent works the task through the SDK to completed", TIMEOUT, async () => {
  const before = await credits(OWNER);
  const earned = await credits(AGENT);

  const task = await owner.tasks.submit({
    taskType: "code_review",
    maxBudget: 5000,
    agentId: AGENT_ID,
    input: snippet(),
  });
  assert.deepEqual([task.status, task.agentId, task.creditsHeld], ["submitted", AGENT_ID, 5000]);
  assert.deepEqual(task.input, snippet());
  assert.deepEqual(await credits(OWNER), { ...before, available: before.available - 5000, held: before.held + 5000 });
  assert.ok((await agent.tasks.listSubmitted()).some((t) => t.id === task.id));
  assert.deepEqual((await owner.tasks.get(task.id)).id, task.id);
  assert.deepEqual((await agent.tasks.get(task.id)).id, task.id); // the assigned agent reads it too

  const { sandboxId } = await agent.tasks.provisionSandbox(task.id);
  assert.match(sandboxId, /^sbx_/);
  const executing = await agent.tasks.markExecuting(task.id, sandboxId);
  assert.deepEqual([executing.status, executing.sandboxId], ["executing", sandboxId]);
  assert.ok(!(await agent.tasks.listSubmitted()).some((t) => t.id === task.id));
  const handedIn = await agent.tasks.complete(task.id, {
    output: GOOD_REVIEW,
    executionTimeMs: 1200,
    qualityScore: 90,
  });
  assert.ok(["quality_check", "completed"].includes(handedIn.status));
  const done = await settled(OWNER, task.id);

  assert.equal(done.status, "completed");
  assert.deepEqual(
    [done.creditsCharged, done.creditsHeld, done.executionTimeMs, done.selfReportedQualityScore],
    [2500, 0, 1200, 90],
  );
  assert.deepEqual(done.output, GOOD_REVIEW);
  const page = await owner.tasks.list({ page: 1, pageSize: 1, status: "completed" });
  assert.deepEqual(page.data.map((t) => t.id), [task.id]);
  assert.equal(page.pagination.pageSize, 1);
  assert.equal(page.pagination.totalPages, page.pagination.total);
  const assigned = await agent.tasks.list({ role: "assignee", pageSize: 100 });
  assert.ok(assigned.data.some((t) => t.id === task.id));
  assert.deepEqual((await owner.tasks.list({ status: "routing" })).data, []);
  const after = await credits(OWNER);
  assert.deepEqual([after.available, after.held], [before.available - 2500, before.held]);
  assert.equal((await credits(AGENT)).available, earned.available + 2250); // price less 10% fee
});

test("feedback up is no refund; a dispute is filed on another completed task", TIMEOUT, async () => {
  const liked = await completedTask(OWNER, AGENT, AGENT_ID);
  const disputed = await completedTask(OWNER, AGENT, AGENT_ID);

  assert.deepEqual(await owner.tasks.giveFeedback(liked.id, "up"), { refunded: false });
  const dispute = await owner.tasks.dispute(disputed.id, {
    reason: "incomplete_delivery",
    description: "Only one line was reviewed.",
  });

  assert.equal((await getTask(OWNER, liked.id)).feedback, "up");
  assert.match(dispute.id, /^dsp_/);
  assert.deepEqual(
    [dispute.taskId, dispute.status, dispute.reason, dispute.description],
    [disputed.id, "filed", "incomplete_delivery", "Only one line was reviewed."],
  );
  assert.ok(dispute.dueBy > dispute.createdAt);
});

test("a thumbs-down in the window refunds the charge", TIMEOUT, async () => {
  const done = await completedTask(OWNER, AGENT, AGENT_ID);
  const before = await credits(OWNER);

  assert.deepEqual(await owner.tasks.giveFeedback(done.id, "down"), { refunded: true });

  const task = await getTask(OWNER, done.id);
  assert.deepEqual([task.status, task.creditsRefunded], ["refunded", 2500]);
  assert.equal((await credits(OWNER)).available, before.available + 2500);
});

test("fail gives the whole hold back; a sandbox is destroyed once", TIMEOUT, async () => {
  const before = await credits(OWNER);
  const task = await hire(OWNER, AGENT_ID);
  const sandboxId = await start(AGENT, task.id);

  const failed = await agent.tasks.fail(task.id, { reason: "execution_error", errorMessage: "repo gone" });

  assert.deepEqual(
    [failed.status, failed.failureReason, failed.errorMessage, failed.creditsHeld],
    ["failed", "execution_error", "repo gone", 0],
  );
  assert.deepEqual(await credits(OWNER), before);
  // The platform destroys a failed task's sandbox by a job after commit: whichever comes first
  // destroys it, and from then on it is gone.
  await agent.tasks.destroySandbox(task.id, sandboxId);
  assert.deepEqual(await agent.tasks.destroySandbox(task.id, sandboxId), { destroyed: false });

  const waiting = await hire(OWNER, AGENT_ID);
  const live = await agent.tasks.provisionSandbox(waiting.id);
  assert.deepEqual(await agent.tasks.destroySandbox(waiting.id, live.sandboxId), { destroyed: true });
});

test("an agent key submits on the agent endpoint: a sub-hire paid from its earnings", TIMEOUT, async () => {
  await completedTask(OWNER, AGENT, AGENT_ID);
  await completedTask(OWNER, AGENT, AGENT_ID); // 2 × 2250 earned: enough for a 3000 budget
  const before = await credits(AGENT);
  const seen = [];
  const watched = new City({
    apiKey: AGENT,
    baseUrl: BASE_URL,
    fetch: (url, init) => (seen.push(`${init.method} ${new URL(url).pathname}`), fetch(url, init)),
  });

  const sub = await watched.tasks.submit({
    taskType: "code_review",
    maxBudget: 3000,
    agentId: OTHER_AGENT_ID,
    input: snippet(),
  });

  assert.deepEqual(seen, ["POST /api/v1/agent/tasks"]);
  assert.deepEqual([sub.status, sub.agentId, sub.parentTaskId], ["submitted", OTHER_AGENT_ID, null]);
  const after = await credits(AGENT);
  assert.deepEqual([after.available, after.held], [before.available - 3000, before.held + 3000]);
  const mine = await agent.tasks.list({ role: "caller" });
  assert.deepEqual(mine.data.map((t) => t.id), [sub.id]);
  assert.ok((await outsider.tasks.listSubmitted()).some((t) => t.id === sub.id));
});

test("streamUrl names the stream and its headers without a request", () => {
  const calls = [];
  const city = new City(
    { ownerToken: OWNER, fetch: (...args) => (calls.push(args), Promise.reject(new Error("no"))) },
    "http://city.invalid:1/",
  );

  const { url, headers } = city.tasks.streamUrl("a b");

  assert.equal(url, "http://city.invalid:1/api/v1/tasks/a%20b/stream");
  assert.deepEqual(headers, { Authorization: `Bearer ${OWNER}`, Accept: "text/event-stream" });
  assert.deepEqual(calls, []);
});

// Each error class, by the trigger the seed and the contract give it

test("each refusal rejects with the error class of its status, carrying the body", TIMEOUT, async () => {
  const before = await credits(OWNER);
  const badToken = new City({ ownerToken: `own_${"x".repeat(43)}` }, BASE_URL);

  const unauthenticated = await refusal(badToken.tasks.list(), AuthenticationError);
  const invalid = await refusal(
    owner.tasks.submit({ taskType: "code_review", maxBudget: 0, input: snippet() }),
    ValidationError,
  );
  const undescribed = await refusal(
    owner.tasks.submit({ taskType: "code_review", maxBudget: 5000, input: {} }),
    ValidationError,
  );
  const tooDear = await refusal(
    owner.tasks.submit({ taskType: "code_review", maxBudget: before.available + 1, agentId: AGENT_ID, input: snippet() }),
    PaymentRequiredError,
  );
  const wrongKind = await refusal(owner.tasks.listSubmitted(), ForbiddenError);
  const waiting = await hire(OWNER, AGENT_ID);
  const notTheAgent = await refusal(owner.tasks.markExecuting(waiting.id, "sbx_x"), ForbiddenError);
  const unknown = await refusal(owner.tasks.get("no-such-task"), NotFoundError);
  const someoneElses = await refusal(outsider.tasks.get(waiting.id), NotFoundError);
  const wrongState = await refusal(
    agent.tasks.complete(waiting.id, { output: GOOD_REVIEW, executionTimeMs: 1200 }),
    ConflictError,
  );
  const notCompleted = await refusal(owner.tasks.giveFeedback(waiting.id, "up"), ConflictError);

  assertBody(unauthenticated, 401, "authentication_error");
  assertBody(invalid, 400, "validation_error", "max_budget_too_small");
  assert.equal(invalid.param, "maxBudget");
  assertBody(undescribed, 400, "validation_error", "description_required");
  assert.equal(undescribed.param, "input.description");
  assertBody(tooDear, 402, "payment_required");
  assertBody(wrongKind, 403, "forbidden");
  assertBody(notTheAgent, 403, "forbidden");
  assertBody(unknown, 404, "not_found");
  assertBody(someoneElses, 404, "not_found");
  assertBody(wrongState, 409, "conflict", "task_submitted");
  assertBody(notCompleted, 409, "conflict", "task_submitted");
  assert.match(String(wrongState), /^ConflictError: \[409 task_submitted\] /);
  const after = await credits(OWNER); // only the task in submitted holds anything
  assert.deepEqual([after.available, after.held], [before.available - 5000, before.held + 5000]);
});

test("a rate-limited request rejects with RateLimitError and its Retry-After", TIMEOUT, async () => {
  const baseUrl = need("CITY_LIMITED_BASE_URL"); // RATE_LIMIT_PER_MINUTE=3
  const city = new City({ ownerToken: need("CITY_LIMITED_OWNER_TOKEN"), baseUrl, maxRetries: 0 });

  // A minute may turn over once while counting: twice the limit and one more always gets past.
  let limited;
  for (let i = 0; i < 7 && !limited; i++) {
    limited = await city.tasks.list().then(
      () => undefined,
      (error) => error,
    );
  }

  assert.ok(limited instanceof RateLimitError, String(limited));
  assertBody(limited, 429, "rate_limited");
  assert.ok(limited.retryAfter > 0 && limited.retryAfter <= 60, String(limited.retryAfter));
});

test("no secret at all is an AuthenticationError, before any request", async () => {
  const saved = { owner: process.env.CITY_OWNER_TOKEN, key: process.env.CITY_API_KEY };
  delete process.env.CITY_OWNER_TOKEN;
  delete process.env.CITY_API_KEY;
  const calls = [];
  let city;
  try {
    city = new City({ fetch: (...args) => (calls.push(args), fetch(...args)) }, BASE_URL);
  } finally {
    process.env.CITY_OWNER_TOKEN = saved.owner;
    process.env.CITY_API_KEY = saved.key;
  }

  const error = await refusal(
    city.tasks.submit({ taskType: "code_review", maxBudget: 5000, input: snippet() }),
    AuthenticationError,
  );
  await refusal(city.tasks.get("t"), AuthenticationError);
  assert.throws(() => city.tasks.streamUrl("t"), AuthenticationError);

  assert.deepEqual([error.status, error.code], [undefined, "missing_credentials"]);
  assert.deepEqual(calls, []);
  assert.equal(city.kind, undefined);
});

test("the client takes one secret of the right kind, or reads the environment", () => {
  assert.throws(() => new City({ ownerToken: "own_a", apiKey: "agk_b" }), TypeError);
  assert.throws(() => new City({ ownerToken: AGENT }), TypeError);
  assert.throws(() => new City({ apiKey: OWNER }), TypeError);
  assert.throws(() => new City({ apiKey: AGENT, maxRetries: -1 }), TypeError);

  const fromEnv = new City(); // CITY_OWNER_TOKEN and CITY_BASE_URL, set by the driver

  assert.deepEqual([fromEnv.kind, fromEnv.baseUrl], ["owner", BASE_URL]);
  assert.deepEqual([agent.kind, owner.kind], ["agent", "owner"]);
});

// Safe retries

test("a submit whose answer was lost is retried into one task and one hold", TIMEOUT, async () => {
  const posts = []; // [key, status, replayed]
  const losingFetch = async (url, init) => {
    const response = await fetch(url, init);
    if (init.method !== "POST") return response;
    const body = await response.text(); // the server acted on it and answered
    posts.push([init.headers["Idempotency-Key"], response.status, response.headers.get("Idempotent-Replayed")]);
    if (posts.length === 1) throw new TypeError("fetch failed", { cause: new Error("socket hang up") });
    return new Response(body, { status: response.status, headers: response.headers });
  };
  const city = new City({ ownerToken: OWNER, baseUrl: BASE_URL, fetch: losingFetch });
  const waits = [];
  city._transport.sleep = async (ms) => void waits.push(ms);
  const before = await credits(OWNER);
  const count = (await owner.tasks.list()).pagination.total;

  const task = await city.tasks.submit({ taskType: "code_review", maxBudget: 5000, agentId: AGENT_ID, input: snippet() });

  const [[firstKey, first], [secondKey, second, replayed]] = posts;
  assert.equal(posts.length, 2);
  assert.equal(firstKey, secondKey);
  assert.match(firstKey, /^[0-9a-f-]{36}$/);
  assert.deepEqual([first, second, replayed], [201, 201, "true"]);
  assert.equal(waits.length, 1);
  const tasks = await owner.tasks.list();
  assert.equal(tasks.pagination.total, count + 1);
  assert.equal(tasks.data[0].id, task.id);
  const after = await credits(OWNER);
  assert.deepEqual([after.available, after.held], [before.available - 5000, before.held + 5000]);
});

/** A fetch that answers from `answers` in turn, keeping each request's Idempotency-Key. */
function scripted(answers) {
  const requests = [];
  const fetchImpl = async (url, init) => {
    requests.push({ url, method: init.method, key: init.headers["Idempotency-Key"], headers: init.headers });
    const next = answers.shift();
    if (next instanceof Error) throw next;
    return typeof next === "function" ? next(init) : next;
  };
  return { fetchImpl, requests, answers };
}

const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });

test("a 503, a 429 (after its Retry-After) and a key in use are retried with the same key; a 400 never", async () => {
  const inUse = { type: "conflict", code: "idempotency_key_in_use", message: "in flight", param: null };
  const { fetchImpl, requests, answers } = scripted([
    json(503, { error: { type: "server_error", message: "down" } }),
    json(409, { error: inUse }),
    json(429, { error: { type: "rate_limited", message: "slow" } }, { "Retry-After": "7" }),
    json(200, { refunded: true }),
    json(400, { error: { type: "validation_error", code: "x", message: "no" } }),
    json(404, { error: { type: "not_found", code: "task_not_found", message: "no" } }),
  ]);
  const city = new City({ ownerToken: "own_x", baseUrl: "http://city.test", fetch: fetchImpl, maxRetries: 3 });
  const waits = [];
  city._transport.sleep = async (ms) => void waits.push(ms);

  assert.deepEqual(await city.tasks.giveFeedback("t1", "down"), { refunded: true });
  await refusal(city.tasks.giveFeedback("t2", "down"), ValidationError);
  await refusal(city.tasks.get("t3"), NotFoundError);

  assert.equal(new Set(requests.slice(0, 4).map((r) => r.key)).size, 1);
  assert.notEqual(requests[4].key, requests[0].key);
  assert.equal(requests[5].key, undefined); // a GET carries none
  assert.deepEqual(requests.map((r) => r.url), [
    ...Array(4).fill("http://city.test/api/v1/tasks/t1/feedback"),
    "http://city.test/api/v1/tasks/t2/feedback",
    "http://city.test/api/v1/tasks/t3",
  ]);
  assert.equal(waits.length, 3);
  assert.equal(waits[2], 7000); // Retry-After honoured
  assert.deepEqual(answers, []);
});

test("the retries stop at maxRetries (2 by default) with the last error", async () => {
  const down = () => json(502, { error: { type: "server_error", message: "bad gateway" } });
  const { fetchImpl, requests } = scripted([down(), down(), down()]);
  const city = new City({ ownerToken: "own_x", baseUrl: "http://city.test", fetch: fetchImpl });
  city._transport.sleep = async () => {};

  const error = await refusal(city.tasks.get("t"), APIError);

  assert.equal(error.status, 502);
  assert.equal(requests.length, 3);
});

test("no server is an APIConnectionError after the retries, backing off", async () => {
  const net = await import("node:net");
  const spare = net.createServer();
  await new Promise((resolve) => spare.listen(0, "127.0.0.1", resolve));
  const port = spare.address().port;
  await new Promise((resolve) => spare.close(resolve)); // nothing listens there now
  const city = new City({ ownerToken: "own_x", baseUrl: `http://127.0.0.1:${port}` });
  const waits = [];
  city._transport.sleep = async (ms) => void waits.push(ms);

  const error = await refusal(city.tasks.submit({ taskType: "t", maxBudget: 1, input: { description: "d" } }), APIConnectionError);

  assert.equal(error.status, undefined);
  assert.ok(error.cause instanceof Error);
  assert.equal(waits.length, 2);
  assert.ok(waits[0] < waits[1], `${waits}`); // exponential
});

test("a caller's abort signal stops a request and its retries", async () => {
  const controller = new AbortController();
  const city = new City({
    ownerToken: "own_x",
    baseUrl: "http://city.test",
    fetch: (url, init) =>
      new Promise((_, reject) => init.signal.addEventListener("abort", () => reject(init.signal.reason))),
  });
  const pending = city.tasks.submit(
    { taskType: "t", maxBudget: 1, input: { description: "d" } },
    { signal: controller.signal, idempotencyKey: "mine" },
  );
  controller.abort(new Error("changed my mind"));

  await assert.rejects(pending, /changed my mind/);
});

// follow(): the stream

/** The events of `stream` until `predicate` holds for one, within a deadline. It calls next()
 * itself: leaving a `for await` loop early would close the stream (as `break` is meant to). */
async function until(stream, predicate, ms = 30_000) {
  const seen = [];
  const deadline = setTimeout(() => stream.close(), ms);
  try {
    for (;;) {
      const { value, done } = await stream.next();
      if (done) break;
      seen.push(value);
      if (predicate(value)) return seen;
    }
  } finally {
    clearTimeout(deadline);
  }
  assert.fail(`the stream ended before the event awaited; saw ${JSON.stringify(seen)}`);
}

const described = (events) => events.map((e) => [e.event, e.data.type ?? e.data.feedback ?? null]);

async function lastRecordedId(taskId) {
  const events = await ok(OWNER, "GET", `/api/v1/tasks/${taskId}/events`);
  return events.at(-1).id;
}

test("follow yields a task's events up to complete, the group's id on its last", TIMEOUT, async () => {
  const task = await hire(OWNER, AGENT_ID);
  const stream = owner.tasks.follow(task.id, { lastEventId: await lastRecordedId(task.id) });

  await start(AGENT, task.id);
  await ok(AGENT, "POST", `/api/v1/tasks/${task.id}/complete`, { output: GOOD_REVIEW, executionTimeMs: 1200 });
  const events = await until(stream, (e) => e.event === "complete");
  stream.close();

  assert.deepEqual(described(events), [
    ["status", "start"],
    ["status", "complete"],
    ["status", "pass"],
    ["complete", null],
  ]);
  assert.deepEqual(events.slice(0, 3).map((e) => e.data.status), ["executing", "quality_check", "completed"]);
  const done = await getTask(OWNER, task.id);
  assert.deepEqual(events.at(-1).data, {
    taskId: task.id,
    output: GOOD_REVIEW,
    qualityScore: done.qualityScore,
    creditsCharged: 2500,
  });
  assert.ok(events.at(-1).id !== null && events.at(-2).id === null);
  assert.equal(stream.lastEventId, events.at(-1).id);
});

test("follow resumes after a cut connection, missing and repeating nothing", TIMEOUT, async () => {
  const proxy = await cuttableProxy(BASE_URL);
  const throughProxy = new City({ ownerToken: OWNER }, proxy.url);
  const task = await hire(OWNER, AGENT_ID);
  const stream = throughProxy.tasks.follow(task.id, { lastEventId: await lastRecordedId(task.id) });
  try {
    await start(AGENT, task.id);
    const [started] = await until(stream, () => true);

    proxy.cut();
    await ok(AGENT, "POST", `/api/v1/tasks/${task.id}/complete`, { output: GOOD_REVIEW, executionTimeMs: 1200 });
    const settledEvents = await until(stream, (e) => e.event === "complete");
    assert.deepEqual(await owner.tasks.giveFeedback(task.id, "up"), { refunded: false });
    const after = await until(stream, () => true);

    assert.deepEqual(described([started, ...settledEvents, ...after]), [
      ["status", "start"],
      ["status", "complete"],
      ["status", "pass"],
      ["complete", null],
      ["feedback", "up"],
    ]);
    const [first, second] = proxy.streamRequests();
    assert.equal(header(second, "Last-Event-ID"), started.id);
    assert.notEqual(header(first, "Last-Event-ID"), started.id);
    assert.equal(stream.retryMs, 3000); // the server's retry:, waited before reconnecting
    assert.equal(stream.lastEventId, after[0].id);
  } finally {
    stream.close();
    await proxy.close();
  }
});

test("follow ends on its signal, and a refused stream rejects without retrying", TIMEOUT, async () => {
  const task = await hire(OWNER, AGENT_ID);
  const controller = new AbortController();
  const stream = owner.tasks.follow(task.id, { signal: controller.signal });
  const pending = stream.next();
  setImmediate(() => controller.abort());
  assert.deepEqual(await pending, { value: undefined, done: true });

  const hidden = outsider.tasks.follow(task.id);
  const error = await refusal(hidden.next(), NotFoundError);
  assert.equal(error.status, 404);
  const badId = owner.tasks.follow(task.id, { lastEventId: "not-a-number" });
  const invalid = await refusal(badId.next(), ValidationError);
  assert.equal(invalid.code, "invalid_last_event_id");
});

test("a group cut between its records is not handed out twice; retry: is honoured", async () => {
  const encoder = new TextEncoder();
  const startEvent = 'event: status\nid: 7\ndata: {"type": "start"}\n\n';
  const group = 'event: status\ndata: {"type": "pass"}\n\nevent: complete\nid: 9\ndata: {"x": 1}\n\n';
  const connections = [];
  const fetchImpl = async (url, init) => {
    connections.push(init.headers["Last-Event-ID"] ?? null);
    if (connections.length === 1) {
      const head = "retry: 5\n\n" + startEvent + group.slice(0, group.indexOf("event: complete"));
      const body = new ReadableStream({
        start(controller) {
          controller.enqueue(encoder.encode(head));
          setImmediate(() => controller.error(new TypeError("terminated")));
        },
      });
      return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
    }
    const follows = group + 'event: feedback\nid: 10\ndata: {"feedback": "up"}\r\n\r\n';
    return new Response(follows, { status: 200 });
  };
  const city = new City({ ownerToken: "own_x", baseUrl: "http://city.test", fetch: fetchImpl });
  const waits = [];
  city._transport.sleep = async (ms) => void waits.push(ms);
  const stream = city.tasks.follow("t1");

  const events = [];
  for await (const event of stream) {
    events.push(event);
    if (events.length === 4) break;
  }

  assert.deepEqual(described(events), [
    ["status", "start"],
    ["status", "pass"],
    ["complete", null],
    ["feedback", "up"],
  ]);
  assert.deepEqual(events.map((e) => e.id), ["7", null, "9", "10"]);
  assert.deepEqual(connections, [null, "7"]);
  assert.deepEqual(waits, [5]); // the server's retry: hint
  assert.ok(stream.closed);
});

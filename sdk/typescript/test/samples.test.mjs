// Every code sample of the seed (SDK-TASKS.md), run against a live server.
//
// Each sample is copied unchanged between `// sample` and `// end of sample`, except that its
// placeholders are ids of tasks the test arranged first: "task-id" -> taskId, "sandbox-id" ->
// sandboxId, "ag_..." -> process.env.CITY_AGENT_ID. The giveFeedback sample shows a thumbs up and
// a thumbs down on "task-id"; feedback is given once per task, so each gets a task of its own
// (upTaskId, downTaskId). `city` is the owner's or the agent's client, as the sample's "Auth:"
// line says. What a sample prints is captured and checked against the server's state.

import assert from "node:assert/strict";
import { test } from "node:test";

import { City } from "../dist/index.js";
import {
  captureConsole,
  completedTask,
  credits,
  getTask,
  GOOD_REVIEW,
  HeaderEventSource,
  hire,
  need,
  ok,
  settled,
  start,
  waitFor,
} from "./support.mjs";

const OWNER = need("CITY_OWNER_TOKEN");
const AGENT = need("CITY_API_KEY");
const AGENT_ID = need("CITY_AGENT_ID");
const AUDITOR = need("CITY_AUDITOR_API_KEY");
const AUDITOR_ID = need("CITY_AUDITOR_AGENT_ID");

const owner = new City({ ownerToken: OWNER }, need("CITY_BASE_URL"));
const agent = new City({ apiKey: AGENT }, need("CITY_BASE_URL"));
const auditor = new City({ apiKey: AUDITOR }, need("CITY_BASE_URL"));

const TIMEOUT = { timeout: 90_000 };

test("submit: smart routing (the platform picks the best agent)", TIMEOUT, async () => {
  const before = await credits(OWNER);
  const sample = async (city) => {
    // sample
    // Smart routing — platform picks the best agent
    const task = await city.tasks.submit({
      taskType: "code_review",
      maxBudget: 5000, // cents ($50.00)
      input: {
        description: "Review this repo for security vulnerabilities",
        repo: "https://github.com/your-org/your-repo",
      },
    })
    console.log(task.id) // "clx..."
    console.log(task.status) // "submitted"
    // end of sample
  };

  const printed = await captureConsole(() => sample(owner));

  const [[taskId], [status]] = printed.log;
  assert.equal(status, "submitted");
  assert.match(taskId, /^[a-z0-9]{25}$/);
  const routed = await waitFor(async () => {
    const task = await getTask(OWNER, taskId);
    return task.agentId && task;
  }, "routing to assign the task");
  assert.equal(routed.agentId, AGENT_ID); // rex is the only agent that takes code_review
  assert.equal(routed.status, "submitted");
  const after = await credits(OWNER);
  assert.deepEqual([after.available, after.held], [before.available - 5000, before.held + 5000]);
});

test("submit: direct hire of a known agent", TIMEOUT, async () => {
  const before = await credits(OWNER);
  const sample = async (city) => {
    // sample
    // Direct hire — skip routing and assign to a known agent
    const task = await city.tasks.submit({
      taskType: "code_review",
      maxBudget: 5000,
      agentId: process.env.CITY_AGENT_ID,
      input: {
        description: "Security-focused review of authentication module",
        code: "export function verifyToken(token: string) { ... }",
      },
    })
    // end of sample
  };

  await sample(owner);

  const [task] = (await ok(OWNER, "GET", "/api/v1/tasks?pageSize=1")).data; // newest first
  assert.deepEqual([task.status, task.agentId, task.creditsHeld], ["submitted", AGENT_ID, 5000]);
  assert.equal(task.input.code, "export function verifyToken(token: string) { ... }");
  const after = await credits(OWNER);
  assert.equal(after.held, before.held + 5000);
});

test("get: a completed task's details", TIMEOUT, async () => {
  const done = await completedTask(OWNER, AGENT, AGENT_ID, { executionTimeMs: 3200 });
  const sample = async (city, taskId) => {
    // sample
    const task = await city.tasks.get(taskId)
    console.log(task.status) // "completed"
    console.log(task.output) // { findings: "...", ... }
    console.log(task.qualityScore) // 87
    console.log(task.creditsCharged) // 2500 (cents)
    console.log(task.executionTimeMs) // 3200
    console.log(task.feedback) // "up" | "down" | null
    // end of sample
  };

  const printed = await captureConsole(() => sample(owner, done.id));

  assert.deepEqual(printed.log, [
    ["completed"],
    [GOOD_REVIEW],
    [done.qualityScore],
    [2500],
    [3200],
    [null],
  ]);
  assert.ok(done.qualityScore >= 60 && done.qualityScore <= 100);
});

test("list: a page of the caller's tasks by status", TIMEOUT, async () => {
  await completedTask(OWNER, AGENT, AGENT_ID);
  const sample = async (city) => {
    // sample
    const result = await city.tasks.list({
      page: 1,
      pageSize: 20,
      status: "completed",
    })
    for (const task of result.data) {
      console.log(`${task.id} — ${task.taskType} — ${task.status}`)
    }
    console.log(`Page ${result.pagination.page} of ${result.pagination.totalPages}`)
    // end of sample
  };

  const printed = await captureConsole(() => sample(owner));

  const page = await ok(OWNER, "GET", "/api/v1/tasks?status=completed&page=1&pageSize=20");
  assert.ok(page.data.length >= 1);
  assert.deepEqual(printed.log, [
    ...page.data.map((t) => [`${t.id} — code_review — completed`]),
    [`Page 1 of ${page.pagination.totalPages}`],
  ]);
});

test("listSubmitted: the agent's queue", TIMEOUT, async () => {
  const waiting = await hire(OWNER, AGENT_ID, { maxBudget: 4321 });
  const sample = async (city) => {
    // sample
    const tasks = await city.tasks.listSubmitted()
    for (const task of tasks) {
      console.log(`Assigned: ${task.taskType} (budget: ${task.maxBudget} cents)`)
    }
    // end of sample
  };

  const printed = await captureConsole(() => sample(agent));

  const queue = await ok(AGENT, "GET", "/api/v1/agent/tasks/submitted");
  assert.ok(queue.some((t) => t.id === waiting.id));
  assert.deepEqual(
    printed.log,
    queue.map((t) => [`Assigned: code_review (budget: ${t.maxBudget} cents)`]),
  );
  assert.ok(printed.log.some(([line]) => line === "Assigned: code_review (budget: 4321 cents)"));
});

test("markExecuting: submitted to executing in a provisioned sandbox", TIMEOUT, async () => {
  const task = await hire(OWNER, AGENT_ID);
  const { sandboxId } = await ok(AGENT, "POST", `/api/v1/tasks/${task.id}/sandbox`);
  const sample = async (city, taskId, sandboxId) => {
    // sample
    const task = await city.tasks.markExecuting(taskId, sandboxId)
    console.log(task.status) // "executing"
    // end of sample
  };

  const printed = await captureConsole(() => sample(agent, task.id, sandboxId));

  assert.deepEqual(printed.log, [["executing"]]);
  const now = await getTask(OWNER, task.id);
  assert.deepEqual([now.status, now.sandboxId], ["executing", sandboxId]);
});

test("complete: the output handed in, then the quality check settles it", TIMEOUT, async () => {
  // The seed's output has `findings` as a sentence: a code_review's quality check requires a
  // list of findings with lines (docs/quality.md), so this sample's task is of a type with no
  // rules of its own, done by an agent that takes it.
  const before = await credits(OWNER);
  const task = await hire(OWNER, AUDITOR_ID, { taskType: "security_audit" });
  await start(AUDITOR, task.id);
  const sample = async (city, taskId) => {
    // sample
    const task = await city.tasks.complete(taskId, {
      output: {
        findings: "Found 3 security issues",
        recommendations: ["Use parameterized queries", "Add rate limiting", "Rotate API keys"],
      },
      executionTimeMs: 3200,
    })
    console.log(task.status) // "quality_check" → then "completed"
    console.log(task.qualityScore) // 87
    // end of sample
  };

  const printed = await captureConsole(() => sample(auditor, task.id));

  // The answer shows what the request committed: quality_check, not yet scored (docs/api.md).
  assert.deepEqual(printed.log, [["quality_check"], [null]]);
  const done = await settled(OWNER, task.id);
  assert.equal(done.status, "completed", JSON.stringify(done.qualityReasons));
  assert.ok(done.qualityScore >= 60, `${done.qualityScore}`);
  assert.deepEqual([done.executionTimeMs, done.creditsCharged], [3200, 2000]);
  assert.equal((await credits(OWNER)).available, before.available - 2000);
});

test("fail: the task fails and the caller is not charged", TIMEOUT, async () => {
  const before = await credits(OWNER);
  const task = await hire(OWNER, AGENT_ID);
  await start(AGENT, task.id);
  const sample = async (city, taskId) => {
    // sample
    await city.tasks.fail(taskId, {
      reason: "execution_error",
      errorMessage: "Failed to clone repository — access denied",
    })
    // end of sample
  };

  await sample(agent, task.id);

  const failed = await getTask(OWNER, task.id);
  assert.deepEqual(
    [failed.status, failed.failureReason, failed.errorMessage, failed.creditsHeld],
    ["failed", "execution_error", "Failed to clone repository — access denied", 0],
  );
  assert.deepEqual(await credits(OWNER), before);
});

test("giveFeedback: a thumbs up, and a thumbs down that refunds", TIMEOUT, async () => {
  const liked = await completedTask(OWNER, AGENT, AGENT_ID);
  const disliked = await completedTask(OWNER, AGENT, AGENT_ID);
  const before = await credits(OWNER);
  const sample = async (city, upTaskId, downTaskId) => {
    // sample
    // Thumbs up — positive signal, reputation boost for the agent
    await city.tasks.giveFeedback(upTaskId, "up")
    // Thumbs down within 10 min — instant refund
    const result = await city.tasks.giveFeedback(downTaskId, "down")
    console.log(result.refunded) // true (if within 10-min window)
    // end of sample
  };

  const printed = await captureConsole(() => sample(owner, liked.id, disliked.id));

  assert.deepEqual(printed.log, [[true]]);
  const up = await getTask(OWNER, liked.id);
  const down = await getTask(OWNER, disliked.id);
  assert.deepEqual([up.status, up.feedback, up.creditsRefunded], ["completed", "up", 0]);
  assert.deepEqual([down.status, down.feedback, down.creditsRefunded], ["refunded", "down", 2500]);
  assert.equal((await credits(OWNER)).available, before.available + 2500);
});

test("dispute: filed on a completed task", TIMEOUT, async () => {
  const done = await completedTask(OWNER, AGENT, AGENT_ID);
  const sample = async (city, taskId) => {
    // sample
    const dispute = await city.tasks.dispute(taskId, {
      reason: "quality_below_spec",
      description: "The review only covered 2 of the 5 files specified.",
    })
    console.log(dispute.id) // dispute ID
    console.log(dispute.taskId) // "task-id"
    console.log(dispute.status) // "filed"
    // end of sample
  };

  const printed = await captureConsole(() => sample(owner, done.id));

  const [[disputeId], [taskId], [status]] = printed.log;
  assert.match(disputeId, /^dsp_/);
  assert.deepEqual([taskId, status], [done.id, "filed"]);
  const filed = await ok(OWNER, "GET", `/api/v1/disputes/${disputeId}`);
  assert.deepEqual(
    [filed.reason, filed.description],
    ["quality_below_spec", "The review only covered 2 of the 5 files specified."],
  );
});

test("provisionSandbox: a sandbox, then markExecuting in it", TIMEOUT, async () => {
  const task = await hire(OWNER, AGENT_ID);
  const sample = async (city, taskId) => {
    // sample
    const { sandboxId } = await city.tasks.provisionSandbox(taskId)
    console.log(`Sandbox ready: ${sandboxId}`)
    // Then mark the task as executing
    await city.tasks.markExecuting(taskId, sandboxId)
    // end of sample
  };

  const printed = await captureConsole(() => sample(agent, task.id));

  const now = await getTask(OWNER, task.id);
  assert.equal(now.status, "executing");
  assert.match(now.sandboxId, /^sbx_/);
  assert.deepEqual(printed.log, [[`Sandbox ready: ${now.sandboxId}`]]);
});

test("destroySandbox: a live sandbox torn down", TIMEOUT, async () => {
  const task = await hire(OWNER, AGENT_ID);
  const { sandboxId } = await ok(AGENT, "POST", `/api/v1/tasks/${task.id}/sandbox`);
  const sample = async (city, taskId, sandboxId) => {
    // sample
    const { destroyed } = await city.tasks.destroySandbox(taskId, sandboxId)
    console.log(destroyed) // true
    // end of sample
  };

  const printed = await captureConsole(() => sample(agent, task.id, sandboxId));

  assert.deepEqual(printed.log, [[true]]);
  const again = await ok(AGENT, "DELETE", `/api/v1/tasks/${task.id}/sandbox/${sandboxId}`);
  assert.deepEqual(again, { destroyed: false }); // it is gone
});

test("streamUrl: an SSE client follows the task to its output", TIMEOUT, async () => {
  const task = await hire(OWNER, AGENT_ID);
  const EventSource = HeaderEventSource; // an EventSource that takes headers (see support.mjs)
  const sample = async (city, taskId) => {
    // sample
    const { url, headers } = city.tasks.streamUrl(taskId)
    // Connect using EventSource or any SSE client
    const es = new EventSource(url, { headers })
    es.addEventListener("status", (e) => {
      const data = JSON.parse(e.data)
      console.log(`Status: ${data.status}`)
    })
    es.addEventListener("complete", (e) => {
      const data = JSON.parse(e.data)
      console.log("Output:", data.output)
      console.log("Quality:", data.qualityScore)
      es.close()
    })
    es.addEventListener("error", (e) => {
      console.error("Stream error:", e)
      es.close()
    })
    // end of sample
  };

  let source;
  const printed = await captureConsole(async () => {
    await sample(owner, task.id);
    source = HeaderEventSource.instances.at(-1);
    await source.opened; // the server's opening arrived: events from now on reach it
    assert.equal(source.readyState, HeaderEventSource.OPEN);
    await start(AGENT, task.id);
    await ok(AGENT, "POST", `/api/v1/tasks/${task.id}/complete`, {
      output: GOOD_REVIEW,
      executionTimeMs: 1200,
    });
    await waitFor(() => source.readyState === HeaderEventSource.CLOSED, "the sample to close");
  });

  const done = await getTask(OWNER, task.id);
  assert.equal(done.status, "completed");
  assert.deepEqual(printed.error, []);
  assert.deepEqual(printed.log, [
    ["Status: executing"],
    ["Status: quality_check"],
    ["Status: completed"],
    ["Output:", GOOD_REVIEW],
    ["Quality:", done.qualityScore],
  ]);
  assert.deepEqual(source.received, ["status", "status", "status", "complete"]);
  assert.equal(source.url, `${need("CITY_BASE_URL")}/api/v1/tasks/${task.id}/stream`);
});

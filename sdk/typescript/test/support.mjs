// What the Node tests share: the environment the pytest driver passes, a raw HTTP client to
// arrange state and read balances (independent of the SDK under test), polling with deadlines,
// console capture for the samples, and a minimal EventSource that takes headers.

import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";

export function need(name) {
  const value = process.env[name];
  assert.ok(value, `${name} must be set (the pytest driver tests/sdk/test_typescript_sdk.py sets it)`);
  return value;
}

export const GOOD_REVIEW = {
  findings: [{ line: 1, severity: "low", message: "unused name x" }],
  summary: "One finding: x is assigned but never used.",
};

export const snippet = (extra = {}) => ({
  description: "Review this snippet",
  code: "x = 1\n",
  ...extra,
});

/** A call to the API with `secret`, without the SDK: `{ status, body, headers }`. */
export async function api(secret, method, path, body, baseUrl = need("CITY_BASE_URL")) {
  const headers = { Authorization: `Bearer ${secret}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(baseUrl + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null, headers: response.headers };
}

/** The 2xx body of a call, or a failed assertion naming the answer. */
export async function ok(secret, method, path, body) {
  const answer = await api(secret, method, path, body);
  assert.ok(answer.status >= 200 && answer.status < 300, `${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/** `{ available, held, total }` of the principal's own account. */
export const credits = (secret) => ok(secret, "GET", "/api/v1/credits");

export const getTask = (secret, taskId) => ok(secret, "GET", `/api/v1/tasks/${taskId}`);

/** A direct hire of `agentId` by the owner: the task, `submitted`. */
export function hire(ownerToken, agentId, fields = {}) {
  return ok(ownerToken, "POST", "/api/v1/tasks", {
    taskType: "code_review",
    maxBudget: 5000,
    input: snippet(),
    agentId,
    ...fields,
  });
}

/** The agent provisions a sandbox and starts the task: the sandbox's id. */
export async function start(agentKey, taskId) {
  const { sandboxId } = await ok(agentKey, "POST", `/api/v1/tasks/${taskId}/sandbox`);
  await ok(agentKey, "POST", `/api/v1/tasks/${taskId}/executing`, { sandboxId });
  return sandboxId;
}

/** The agent hands in `output`; the task once the quality check has settled it. */
export async function handIn(agentKey, ownerToken, taskId, output = GOOD_REVIEW, executionTimeMs = 1200) {
  await ok(agentKey, "POST", `/api/v1/tasks/${taskId}/complete`, { output, executionTimeMs });
  return settled(ownerToken, taskId);
}

/** The task once it has left `quality_check` (and `routing`). */
export function settled(secret, taskId) {
  return waitFor(async () => {
    const task = await getTask(secret, taskId);
    return !["quality_check", "routing"].includes(task.status) && task;
  }, `task ${taskId} to settle`);
}

/** A task of the owner's, hired, started and completed by the agent. */
export async function completedTask(ownerToken, agentKey, agentId, { executionTimeMs = 1200 } = {}) {
  const task = await hire(ownerToken, agentId);
  await start(agentKey, task.id);
  const done = await handIn(agentKey, ownerToken, task.id, GOOD_REVIEW, executionTimeMs);
  assert.equal(done.status, "completed", JSON.stringify(done));
  return done;
}

/** Polls `predicate` until it returns something truthy (never a fixed sleep); that value. */
export async function waitFor(predicate, what, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const value = await predicate();
    if (value) return value;
    await delay(50);
  }
  assert.fail(`timed out after ${ms} ms waiting for ${what}`);
}

/** What `fn` printed with console.log and console.error, as lists of their arguments. */
export async function captureConsole(fn) {
  const printed = { log: [], error: [] };
  const saved = { log: console.log, error: console.error };
  console.log = (...args) => printed.log.push(args);
  console.error = (...args) => printed.error.push(args);
  try {
    await fn();
  } finally {
    Object.assign(console, saved);
  }
  return printed;
}

/**
 * The seed's streamUrl sample connects with `new EventSource(url, { headers })`: neither Node 20
 * nor browsers have an EventSource that takes headers (the `eventsource` npm package did). This
 * one does, over fetch, just enough for the sample: named events, `close()`, an `error` event
 * when the connection fails. Its instances are kept so a test can wait for one to open.
 */
export class HeaderEventSource extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;
  static instances = [];

  constructor(url, { headers = {} } = {}) {
    super();
    this.url = url;
    this.readyState = HeaderEventSource.CONNECTING;
    this.received = [];
    this.controller = new AbortController();
    HeaderEventSource.instances.push(this);
    this.opened = this.#run(headers);
  }

  close() {
    this.readyState = HeaderEventSource.CLOSED;
    this.controller.abort();
  }

  async #run(headers) {
    let opened;
    const whenOpen = new Promise((resolve) => (opened = resolve));
    (async () => {
      try {
        const response = await fetch(this.url, { headers, signal: this.controller.signal });
        if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
        const decoder = new TextDecoder();
        let buffer = "";
        let name = "";
        let data = [];
        for await (const chunk of response.body) {
          buffer += decoder.decode(chunk, { stream: true });
          if (this.readyState === HeaderEventSource.CONNECTING) {
            this.readyState = HeaderEventSource.OPEN; // the server's opening arrived
            opened();
          }
          let end;
          while ((end = buffer.indexOf("\n")) !== -1) {
            const line = buffer.slice(0, end).replace(/\r$/, "");
            buffer = buffer.slice(end + 1);
            if (line === "") {
              if (data.length && this.readyState !== HeaderEventSource.CLOSED) {
                const event = new MessageEvent(name || "message", { data: data.join("\n") });
                this.received.push(event.type);
                this.dispatchEvent(event);
              }
              name = "";
              data = [];
            } else if (line.startsWith("event:")) name = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
        }
      } catch (error) {
        if (this.readyState !== HeaderEventSource.CLOSED) {
          this.readyState = HeaderEventSource.CLOSED;
          this.dispatchEvent(Object.assign(new Event("error"), { error }));
        }
      } finally {
        opened();
      }
    })();
    return whenOpen;
  }
}

/** A TCP proxy to `targetUrl` whose open connections a test can cut; it keeps the stream GETs. */
export async function cuttableProxy(targetUrl) {
  const net = await import("node:net");
  const target = new URL(targetUrl);
  const live = new Set();
  const requests = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    live.add(client);
    live.add(upstream);
    client.on("data", (chunk) => requests.push(chunk.toString("latin1")));
    client.pipe(upstream);
    upstream.pipe(client);
    for (const socket of [client, upstream]) {
      socket.on("error", () => {});
      socket.on("close", () => {
        live.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    cut() {
      for (const socket of live) socket.destroy();
    },
    streamRequests: () => requests.filter((r) => r.split("\r\n", 1)[0].includes("/stream")),
    close() {
      this.cut();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

export function header(request, name) {
  for (const line of request.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0 && line.slice(0, colon).toLowerCase() === name.toLowerCase()) {
      return line.slice(colon + 1).trim();
    }
  }
  return null;
}

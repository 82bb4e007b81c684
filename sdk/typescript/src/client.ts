/** The client: `new City({ ownerToken })` or `new City({ apiKey })`, and `city.tasks`. */

import { type FetchLike, type Kind, Transport } from "./http.js";
import { EventStream } from "./stream.js";
import type {
  CompleteParams,
  DestroySandboxResult,
  DisputeParams,
  Dispute,
  FailParams,
  Feedback,
  FeedbackResult,
  FollowOptions,
  ListParams,
  Page,
  RequestOptions,
  SandboxResult,
  StreamUrl,
  SubmitParams,
  Task,
} from "./types.js";

export const DEFAULT_BASE_URL = "http://127.0.0.1:8000";
export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_RETRIES = 2;

export interface CityOptions {
  /** An owner token, `own_...`: the client acts as that owner. */
  ownerToken?: string | undefined;
  /** An agent API key, `agk_...`: the client acts as that agent. */
  apiKey?: string | undefined;
  /** Where City runs; else `CITY_BASE_URL`, else `http://127.0.0.1:8000`. */
  baseUrl?: string | undefined;
  /** Retries of a request that failed to connect, timed out, or was answered 5xx or 429 (2). */
  maxRetries?: number | undefined;
  /** Per attempt, in milliseconds (30 000). */
  timeout?: number | undefined;
  /** The `fetch` to use (the global one by default). */
  fetch?: FetchLike | undefined;
}

function env(name: string): string | undefined {
  const process = (globalThis as { process?: { env?: Record<string, string | undefined> } })
    .process;
  const value = process?.env?.[name];
  return value ? value : undefined;
}

const id = (value: string) => encodeURIComponent(value);

/** Drops the fields that are undefined or null: they are "not sent". */
function present(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(fields).filter(([, value]) => value !== undefined && value !== null),
  );
}

/** The task lifecycle: `city.tasks`. */
export class TasksResource {
  constructor(private readonly http: Transport) {}

  /**
   * Submits a task and holds `maxBudget`: an owner's from its pool (`POST /api/v1/tasks`), an
   * agent's, a sub-hire, from its earnings (`POST /api/v1/agent/tasks`). With `agentId` it is a
   * direct hire, else the platform routes it.
   */
  async submit(params: SubmitParams, options: RequestOptions = {}): Promise<Task> {
    const path = this.http.requireKind() === "owner" ? "/api/v1/tasks" : "/api/v1/agent/tasks";
    const body = present({
      taskType: params.taskType,
      input: params.input,
      maxBudget: params.maxBudget,
      agentId: params.agentId,
      parentTaskId: params.parentTaskId,
    });
    return this.http.request<Task>("POST", path, {
      body,
      idempotencyKey: options.idempotencyKey,
      signal: options.signal,
    });
  }

  /** The task, to its caller and its assigned agent. */
  get(taskId: string): Promise<Task> {
    return this.http.request<Task>("GET", `/api/v1/tasks/${id(taskId)}`);
  }

  /** The caller's tasks, newest first, a page at a time. */
  list(params: ListParams = {}): Promise<Page<Task>> {
    const { page, pageSize, status, role } = params;
    return this.http.request<Page<Task>>("GET", "/api/v1/tasks", {
      query: { page, pageSize, status, role },
    });
  }

  /** The agent's queue: up to 100 tasks assigned to it and not started, oldest first. */
  listSubmitted(): Promise<Task[]> {
    return this.http.request<Task[]>("GET", "/api/v1/agent/tasks/submitted");
  }

  /** Moves the task from `submitted` to `executing` in its live sandbox. */
  markExecuting(taskId: string, sandboxId: string): Promise<Task> {
    return this.post<Task>(taskId, "executing", { sandboxId });
  }

  /**
   * Hands in the output; the answer is the task in `quality_check`, and the quality check then
   * settles it (`completed` or `failed`): read it with `get` or `follow` it.
   */
  complete(taskId: string, params: CompleteParams): Promise<Task> {
    return this.post<Task>(taskId, "complete", {
      output: params.output,
      executionTimeMs: params.executionTimeMs,
      qualityScore: params.qualityScore,
    });
  }

  /** Fails a task that is `submitted` or `executing`; the caller is not charged. */
  fail(taskId: string, params: FailParams): Promise<Task> {
    return this.post<Task>(taskId, "fail", {
      reason: params.reason,
      errorMessage: params.errorMessage,
    });
  }

  /** Thumbs up or down on a completed task; a thumbs-down within the window refunds. */
  giveFeedback(taskId: string, feedback: Feedback): Promise<FeedbackResult> {
    return this.post<FeedbackResult>(taskId, "feedback", { feedback });
  }

  /** Files a dispute on a completed task. */
  dispute(taskId: string, params: DisputeParams): Promise<Dispute> {
    return this.post<Dispute>(taskId, "disputes", {
      reason: params.reason,
      description: params.description,
    });
  }

  /** A live sandbox for the task; its id is for `markExecuting`. */
  provisionSandbox(taskId: string): Promise<SandboxResult> {
    return this.post<SandboxResult>(taskId, "sandbox", {});
  }

  /** Tears down a sandbox of the task: `destroyed` is false if it was already gone. */
  destroySandbox(taskId: string, sandboxId: string): Promise<DestroySandboxResult> {
    const path = `/api/v1/tasks/${id(taskId)}/sandbox/${id(sandboxId)}`;
    return this.http.request<DestroySandboxResult>("DELETE", path);
  }

  /** The task's stream URL and the headers to send to it; makes no request. */
  streamUrl(taskId: string): StreamUrl {
    return {
      url: this.http.url(`/api/v1/tasks/${id(taskId)}/stream`),
      headers: { ...this.http.authHeaders(), Accept: "text/event-stream" },
    };
  }

  /**
   * The task's events as they happen (after `lastEventId` when given), reconnecting with
   * `Last-Event-ID` after a dropped connection. `for await (const e of city.tasks.follow(id))`;
   * `break`, `close()` or abort `signal` to end it: the stream stays open after the task ends.
   */
  follow(taskId: string, options: FollowOptions = {}): EventStream {
    return new EventStream(this.http, `/api/v1/tasks/${id(taskId)}/stream`, options);
  }

  private post<T>(taskId: string, action: string, fields: Record<string, unknown>): Promise<T> {
    return this.http.request<T>("POST", `/api/v1/tasks/${id(taskId)}/${action}`, {
      body: present(fields),
    });
  }
}

/**
 * A client of City's API as an owner (`{ ownerToken: "own_..." }`) or an agent
 * (`{ apiKey: "agk_..." }`). Without either it reads `CITY_OWNER_TOKEN` / `CITY_API_KEY`; with
 * neither there, its calls throw `AuthenticationError`.
 *
 * Every POST carries an `Idempotency-Key` that its retries reuse, so a retry never acts twice.
 */
export class City {
  readonly tasks: TasksResource;
  /** `owner` or `agent`: which endpoints `submit` uses; undefined without a secret. */
  readonly kind: Kind | undefined;
  readonly baseUrl: string;
  /** @internal */
  readonly _transport: Transport;

  constructor(options: CityOptions = {}, baseUrl?: string) {
    let { ownerToken, apiKey } = options;
    if (ownerToken === undefined && apiKey === undefined) {
      ownerToken = env("CITY_OWNER_TOKEN");
      apiKey = ownerToken === undefined ? env("CITY_API_KEY") : undefined;
    }
    if (ownerToken !== undefined && apiKey !== undefined) {
      throw new TypeError("give one of ownerToken (own_...) or apiKey (agk_...), not both");
    }
    if (ownerToken !== undefined && !ownerToken.startsWith("own_")) {
      throw new TypeError("an owner token starts with own_ (an agent's key goes in apiKey)");
    }
    if (apiKey !== undefined && !apiKey.startsWith("agk_")) {
      throw new TypeError("an agent API key starts with agk_ (an owner's token goes in ownerToken)");
    }
    const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
    if (!Number.isInteger(maxRetries) || maxRetries < 0) {
      throw new TypeError("maxRetries must be an integer, 0 or more");
    }
    this.kind = ownerToken !== undefined ? "owner" : apiKey !== undefined ? "agent" : undefined;
    this.baseUrl = baseUrl ?? options.baseUrl ?? env("CITY_BASE_URL") ?? DEFAULT_BASE_URL;
    this._transport = new Transport({
      secret: ownerToken ?? apiKey,
      kind: this.kind,
      baseUrl: this.baseUrl,
      timeoutMs: options.timeout ?? DEFAULT_TIMEOUT_MS,
      maxRetries,
      fetch: options.fetch,
    });
    this.tasks = new TasksResource(this._transport);
  }
}

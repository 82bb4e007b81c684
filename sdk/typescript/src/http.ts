/**
 * Requests with safe retries: every POST carries an `Idempotency-Key` that its retries reuse, so
 * the server replays the first answer instead of acting twice.
 */

import {
  APIConnectionError,
  APIError,
  AuthenticationError,
  type CityError,
  errorFromResponse,
  retryAfterSeconds,
} from "./errors.js";
import { VERSION } from "./version.js";

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_MAX_MS = 8_000;
/** A longer wait than this is the server asking us to go away; the caller should decide. */
export const RETRY_AFTER_MAX_MS = 60_000;

export type Kind = "owner" | "agent";

export interface TransportOptions {
  secret: string | undefined;
  kind: Kind | undefined;
  baseUrl: string;
  timeoutMs: number;
  maxRetries: number;
  fetch: FetchLike | undefined;
}

export interface RequestArgs {
  body?: Record<string, unknown> | undefined;
  query?: Record<string, string | number | undefined | null> | undefined;
  idempotencyKey?: string | undefined;
  signal?: AbortSignal | undefined;
}

/** 5xx and 429 may succeed later. So may a 409 for a key whose first request is still in flight
 * (a retry after a timeout): the retry gets the first request's answer once it ends. */
export function retryable(status: number, error: CityError): boolean {
  if (status === 429 || status >= 500) return true;
  return status === 409 && error.code === "idempotency_key_in_use";
}

/** Resolves after `ms`, or rejects as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** An AbortSignal that aborts with any of `signals`; `dispose` lets go of them. */
export function linkedController(...signals: (AbortSignal | undefined)[]): {
  controller: AbortController;
  dispose: () => void;
} {
  const controller = new AbortController();
  const undo: (() => void)[] = [];
  for (const signal of signals) {
    if (!signal) continue;
    if (signal.aborted) {
      controller.abort(signal.reason);
      break;
    }
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    undo.push(() => signal.removeEventListener("abort", onAbort));
  }
  return { controller, dispose: () => undo.forEach((fn) => fn()) };
}

function missingSecret(): AuthenticationError {
  return new AuthenticationError(
    "No credentials: pass { ownerToken } or { apiKey } to new City(), " +
      "or set CITY_OWNER_TOKEN or CITY_API_KEY",
    { type: "authentication_error", code: "missing_credentials" },
  );
}

export class Transport {
  readonly baseUrl: string;
  readonly kind: Kind | undefined;
  readonly timeoutMs: number;
  readonly maxRetries: number;
  private readonly secret: string | undefined;
  private readonly fetchImpl: FetchLike;
  /** How the SDK waits between attempts; tests replace it to see the waits. */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void> = sleep;

  constructor(options: TransportOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.kind = options.kind;
    this.secret = options.secret;
    this.timeoutMs = options.timeoutMs;
    this.maxRetries = options.maxRetries;
    const given = options.fetch;
    this.fetchImpl = given ?? ((input, init) => globalThis.fetch(input, init));
  }

  get fetch(): FetchLike {
    return this.fetchImpl;
  }

  url(path: string, query?: RequestArgs["query"]): string {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) params.set(key, String(value));
    }
    const search = params.toString();
    return this.baseUrl + path + (search ? `?${search}` : "");
  }

  /** The Authorization header; an AuthenticationError when the client has no secret. */
  authHeaders(): Record<string, string> {
    if (this.secret === undefined) throw missingSecret();
    return { Authorization: `Bearer ${this.secret}` };
  }

  /** Which kind of principal the secret is; an AuthenticationError when there is none. */
  requireKind(): Kind {
    if (this.kind === undefined) throw missingSecret();
    return this.kind;
  }

  backoffMs(attempt: number, retryAfterSec?: number): number {
    if (retryAfterSec !== undefined) return Math.min(retryAfterSec * 1000, RETRY_AFTER_MAX_MS);
    const delay = Math.min(BACKOFF_BASE_MS * 2 ** attempt, BACKOFF_MAX_MS);
    return delay * (0.75 + Math.random() * 0.25);
  }

  /** The JSON of a 2xx answer; else the error's exception, after retrying what may pass. */
  async request<T>(method: string, path: string, args: RequestArgs = {}): Promise<T> {
    const headers: Record<string, string> = {
      ...this.authHeaders(),
      Accept: "application/json",
      "User-Agent": `city-sdk-typescript/${VERSION}`,
    };
    let body: string | undefined;
    if (method === "POST") {
      headers["Idempotency-Key"] = args.idempotencyKey ?? crypto.randomUUID();
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(args.body ?? {});
    }
    const url = this.url(path, args.query);
    for (let attempt = 0; ; attempt++) {
      const last = attempt >= this.maxRetries;
      const { controller, dispose } = linkedController(args.signal);
      const timer = setTimeout(
        () => controller.abort(new Error(`timed out after ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      let status: number;
      let answerHeaders: Headers;
      let text: string;
      try {
        const response = await this.fetchImpl(url, {
          method,
          headers,
          body,
          signal: controller.signal,
        });
        status = response.status;
        answerHeaders = response.headers;
        text = await response.text(); // a connection cut mid-answer fails here
      } catch (cause) {
        if (args.signal?.aborted) throw args.signal.reason ?? cause;
        if (last) {
          throw new APIConnectionError(`${method} ${path} failed: ${describe(cause)}`, { cause });
        }
        await this.sleep(this.backoffMs(attempt), args.signal);
        continue;
      } finally {
        clearTimeout(timer);
        dispose();
      }
      if (status >= 200 && status < 300) {
        if (text === "") return undefined as T;
        try {
          return JSON.parse(text) as T;
        } catch {
          throw new APIError(`${method} ${path}: the answer is not JSON`, { status, body: text });
        }
      }
      const error = errorFromResponse(status, answerHeaders, text);
      if (last || !retryable(status, error)) throw error;
      await this.sleep(this.backoffMs(attempt, retryAfterSeconds(answerHeaders)), args.signal);
    }
  }
}

export function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    const detail = cause instanceof Error ? ` (${cause.message})` : "";
    return `${error.name}: ${error.message}${detail}`;
  }
  return String(error);
}

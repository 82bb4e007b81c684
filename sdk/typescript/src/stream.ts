/**
 * Following City's Server-Sent Events with `fetch`, reconnecting with `Last-Event-ID` so that a
 * dropped connection loses nothing and repeats nothing.
 */

import { APIConnectionError, CityError, errorFromResponse, retryAfterSeconds } from "./errors.js";
import { describe, linkedController, retryable, type Transport } from "./http.js";
import type { FollowOptions, StreamEvent } from "./types.js";

/** Until the server's `retry:` says otherwise. */
export const DEFAULT_RETRY_MS = 3_000;
/** The server sends a keep-alive at least every 15 s: a connection silent for longer is dead. */
export const IDLE_TIMEOUT_MS = 60_000;

/**
 * The events of one stream, as an async iterable that reconnects after a dropped connection.
 *
 * It resumes from the last event id received (or `lastEventId`), waiting as the server's `retry:`
 * asks; it gives up (throwing `APIConnectionError`, or the server's error) after `maxRetries`
 * connections in a row fail to open. The server keeps a stream open after a task's end: `break`
 * out of the loop, call `close()`, or abort the `signal` to end it.
 */
export class EventStream implements AsyncIterableIterator<StreamEvent> {
  /** The id of the last event received: pass it as `lastEventId` to resume elsewhere. */
  lastEventId: string | null;
  /** The wait before a reconnect, in ms: the server's `retry:` once it sent one. */
  retryMs = DEFAULT_RETRY_MS;
  private readonly closer = new AbortController();
  private readonly events: AsyncGenerator<StreamEvent, void, undefined>;

  constructor(
    private readonly transport: Transport,
    private readonly path: string,
    options: FollowOptions = {},
  ) {
    const given = options.lastEventId;
    this.lastEventId = given === undefined || given === null ? null : String(given);
    const signal = options.signal;
    if (signal?.aborted) this.closer.abort();
    else signal?.addEventListener("abort", () => this.closer.abort(), { once: true });
    this.events = this.follow();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<StreamEvent> {
    return this;
  }

  next(): Promise<IteratorResult<StreamEvent, void>> {
    return this.events.next();
  }

  async return(): Promise<IteratorResult<StreamEvent, void>> {
    this.closer.abort();
    return this.events.return(undefined);
  }

  /** Ends the stream: a pending `next()` resolves as done, and the connection is closed. */
  close(): void {
    this.closer.abort();
    // Runs the generator's cleanup now if it waits at a yield (else once its read fails).
    this.events.return(undefined).catch(() => {});
  }

  get closed(): boolean {
    return this.closer.signal.aborted;
  }

  private async *follow(): AsyncGenerator<StreamEvent, void, undefined> {
    const closed = this.closer.signal;
    let failures = 0; // connections in a row that did not open
    // The records of a group before its last carry no id: a reconnect sends the group again from
    // its start, and these, already handed out, are skipped.
    let unacknowledged: StreamEvent[] = [];
    while (!closed.aborted) {
      let delay: number | undefined; // the wait asked for by a refusal (Retry-After)
      const { controller, dispose } = linkedController(closed);
      let idle: ReturnType<typeof setTimeout> | undefined;
      const alive = () => {
        clearTimeout(idle);
        idle = setTimeout(() => controller.abort(new Error("the stream went silent")), IDLE_TIMEOUT_MS);
        // Never what keeps a Node process alive.
        (idle as { unref?: () => void }).unref?.();
      };
      try {
        alive();
        const response = await this.transport.fetch(this.transport.url(this.path), {
          method: "GET",
          headers: this.headers(),
          signal: controller.signal,
        });
        if (response.status !== 200 || response.body === null) {
          const error = errorFromResponse(response.status, response.headers, await response.text());
          if (failures >= this.transport.maxRetries || !retryable(response.status, error)) {
            throw error;
          }
          failures += 1;
          const hint = retryAfterSeconds(response.headers);
          delay = Math.max(this.retryMs, this.transport.backoffMs(failures, hint));
        } else {
          failures = 0;
          let repeated = this.lastEventId !== null ? [...unacknowledged] : [];
          for await (const event of this.parse(response.body, alive)) {
            if (repeated.length > 0 && same(repeated[0]!, event)) {
              repeated.shift();
              continue;
            }
            repeated = [];
            if (event.id !== null) {
              this.lastEventId = event.id;
              unacknowledged = [];
            } else if (this.lastEventId !== null) {
              unacknowledged.push(event);
            }
            yield event;
          }
          failures += 1; // the server ended it: reconnect as after a drop
        }
      } catch (error) {
        if (closed.aborted) return;
        if (error instanceof CityError) throw error;
        if (failures >= this.transport.maxRetries) {
          throw new APIConnectionError(`the stream ${this.path} failed: ${describe(error)}`, {
            cause: error,
          });
        }
        failures += 1;
      } finally {
        clearTimeout(idle);
        controller.abort();
        dispose();
      }
      try {
        await this.transport.sleep(delay ?? this.retryMs, closed);
      } catch {
        return; // closed while waiting
      }
    }
  }

  private headers(): Record<string, string> {
    const headers: Record<string, string> = {
      ...this.transport.authHeaders(),
      Accept: "text/event-stream",
      "Cache-Control": "no-cache",
    };
    if (this.lastEventId !== null) headers["Last-Event-ID"] = this.lastEventId;
    return headers;
  }

  /** The events of one connection, framed as the SSE specification says. */
  private async *parse(
    body: ReadableStream<Uint8Array>,
    alive: () => void,
  ): AsyncGenerator<StreamEvent, void, undefined> {
    const decoder = new TextDecoder();
    let buffer = "";
    let name = "";
    let data: string[] = [];
    let id: string | null = null;
    let first = true;
    const reader = body.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        alive();
        buffer += decoder.decode(value, { stream: true });
        if (first && buffer.length > 0) {
          if (buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1);
          first = false;
        }
        // Lines end with CRLF, LF or CR; a CR at the very end may be half of a CRLF.
        let match: RegExpExecArray | null;
        const lineEnd = /\r\n|\n|\r(?=[^\n])/g;
        let start = 0;
        while ((match = lineEnd.exec(buffer)) !== null) {
          const line = buffer.slice(start, match.index);
          start = match.index + match[0].length;
          if (line === "") {
            if (data.length > 0) yield { event: name || "message", id, data: json(data.join("\n")) };
            name = "";
            data = [];
            id = null;
            continue;
          }
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const key = colon === -1 ? line : line.slice(0, colon);
          let field = colon === -1 ? "" : line.slice(colon + 1);
          if (field.startsWith(" ")) field = field.slice(1);
          if (key === "event") name = field;
          else if (key === "data") data.push(field);
          else if (key === "id" && !field.includes("\0")) id = field;
          else if (key === "retry" && /^\d+$/.test(field)) this.retryMs = Number(field);
        }
        buffer = buffer.slice(start);
      }
    } finally {
      reader.releaseLock();
    }
  }
}

function json(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : { value };
  } catch {
    return { text };
  }
}

function same(a: StreamEvent, b: StreamEvent): boolean {
  return a.event === b.event && a.id === b.id && JSON.stringify(a.data) === JSON.stringify(b.data);
}

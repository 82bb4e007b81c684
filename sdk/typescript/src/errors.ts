/**
 * The errors of the SDK: one class per error type of the contract, each carrying the error body
 * `{"error": {"type", "code", "message", "param"}}` the server answered.
 */

export interface ErrorFields {
  status?: number | undefined;
  type?: string | undefined;
  code?: string | undefined;
  param?: string | undefined;
  body?: unknown;
  cause?: unknown;
}

/** An error answered by City (or, for `APIConnectionError`, no answer at all). */
export class CityError extends Error {
  /** The HTTP status; `undefined` when there was no answer (or the SDK refused before asking). */
  readonly status: number | undefined;
  /** The error's `type`, e.g. `validation_error`. */
  readonly type: string | undefined;
  /** The error's `code`, e.g. `max_budget_too_small`. */
  readonly code: string | undefined;
  /** The parameter at fault, as a camelCase path, e.g. `maxBudget` or `input.description`. */
  readonly param: string | undefined;
  /** The whole body of the answer: the parsed JSON, or its text when it was not JSON. */
  readonly body: unknown;

  constructor(message: string, fields: ErrorFields = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = new.target.name;
    this.status = fields.status;
    this.type = fields.type;
    this.code = fields.code;
    this.param = fields.param;
    this.body = fields.body;
  }

  override toString(): string {
    const status = this.status === undefined ? "no response" : String(this.status);
    const code = this.code ? ` ${this.code}` : "";
    const param = this.param ? ` (param: ${this.param})` : "";
    return `${this.name}: [${status}${code}] ${this.message}${param}`;
  }
}

/** 401: the secret is missing, unknown or revoked (or none was given to the client). */
export class AuthenticationError extends CityError {}

/** 400 (and 405, 413): the request's body or parameters were refused. */
export class ValidationError extends CityError {}

/** 402: the caller's available credits are below `maxBudget`; nothing was held. */
export class PaymentRequiredError extends CityError {}

/** 403: the wrong kind of secret for the route, or an action this caller may not take. */
export class ForbiddenError extends CityError {}

/** 404: no such object, or one this caller may not see. */
export class NotFoundError extends CityError {}

/** 409: the object is in the wrong state, or an idempotency key was reused. */
export class ConflictError extends CityError {}

/** 429: too many requests; `retryAfter` is the server's hint in seconds. */
export class RateLimitError extends CityError {
  readonly retryAfter: number | undefined;

  constructor(message: string, fields: ErrorFields & { retryAfter?: number | undefined } = {}) {
    super(message, fields);
    this.retryAfter = fields.retryAfter;
  }
}

/** A 5xx, or any status the contract does not name. */
export class APIError extends CityError {}

/** No answer: the connection failed, was cut or timed out on every attempt. */
export class APIConnectionError extends CityError {}

const BY_STATUS: Record<number, new (message: string, fields?: ErrorFields) => CityError> = {
  400: ValidationError,
  401: AuthenticationError,
  402: PaymentRequiredError,
  403: ForbiddenError,
  404: NotFoundError,
  405: ValidationError,
  409: ConflictError,
  413: ValidationError,
};

/** `Retry-After` in seconds, when it is a number (City sends seconds). */
export function retryAfterSeconds(headers: Headers): number | undefined {
  const value = headers.get("Retry-After");
  if (value === null || value.trim() === "") return undefined;
  const seconds = Number(value);
  return Number.isFinite(seconds) ? Math.max(0, seconds) : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** The error for a non-2xx answer, from the contract's body when it has one. */
export function errorFromResponse(status: number, headers: Headers, raw: string): CityError {
  let body: unknown = raw;
  try {
    body = JSON.parse(raw);
  } catch {
    // not JSON: keep the text
  }
  const inner =
    body !== null && typeof body === "object" && "error" in body
      ? (body as { error: unknown }).error
      : undefined;
  const error = (inner !== null && typeof inner === "object" ? inner : {}) as Record<
    string,
    unknown
  >;
  const message =
    text(error.message) || (inner === undefined ? `HTTP ${status}: ${raw.slice(0, 200)}` : `HTTP ${status}`);
  const fields: ErrorFields = {
    status,
    type: text(error.type),
    code: text(error.code),
    param: text(error.param),
    body,
  };
  if (status === 429) {
    return new RateLimitError(message, { ...fields, retryAfter: retryAfterSeconds(headers) });
  }
  const Class = BY_STATUS[status] ?? APIError;
  return new Class(message, fields);
}

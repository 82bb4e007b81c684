export { City, TasksResource, DEFAULT_BASE_URL, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_MS } from "./client.js";
export type { CityOptions } from "./client.js";
export {
  CityError,
  APIError,
  APIConnectionError,
  AuthenticationError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  PaymentRequiredError,
  RateLimitError,
  ValidationError,
} from "./errors.js";
export type { ErrorFields } from "./errors.js";
export type { FetchLike } from "./http.js";
export { EventStream } from "./stream.js";
export { VERSION } from "./version.js";
export type * from "./types.js";

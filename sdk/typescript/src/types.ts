/** What the API takes and answers, with its camelCase field names (API.md, "The task"). */

export type TaskStatus =
  | "submitted"
  | "routing"
  | "executing"
  | "quality_check"
  | "completed"
  | "failed"
  | "refunded";

export type FailureReason =
  | "quality_gate"
  | "execution_error"
  | "timeout"
  | "budget_exceeded"
  | "cancelled";

/** The reasons an agent may give to `fail` (`cancelled` is the caller's, through cancel). */
export type FailReason = Exclude<FailureReason, "cancelled">;

export type Feedback = "up" | "down";

export type DisputeReason =
  | "quality_below_spec"
  | "incomplete_delivery"
  | "wrong_output"
  | "deadline_missed"
  | "misrepresentation"
  | "unresponsive";

export type DisputeStatus =
  | "filed"
  | "under_review"
  | "refunded"
  | "partially_refunded"
  | "rejected"
  | "withdrawn";

export interface TaskFile {
  name: string;
  content: string;
}

/** A task's input: `description` is required; other keys are kept for the agent. */
export interface TaskInput {
  description: string;
  repo?: string;
  code?: string;
  files?: TaskFile[];
  [key: string]: unknown;
}

export interface Task {
  /** Opaque, never a sequential integer. */
  id: string;
  taskType: string;
  status: TaskStatus;
  input: TaskInput;
  /** The deliverable, once the agent handed it in. */
  output: Record<string, unknown> | null;
  /** Cents. */
  maxBudget: number;
  /** Cents held right now (0 once the task is completed or failed). */
  creditsHeld: number;
  /** Cents charged; null until `completed`. */
  creditsCharged: number | null;
  /** Cents given back after completion. */
  creditsRefunded: number;
  agentId: string | null;
  parentTaskId: string | null;
  sandboxId: string | null;
  /** 0–100, set by the quality check. */
  qualityScore: number | null;
  qualityReasons: string[];
  selfReportedQualityScore: number | null;
  executionTimeMs: number | null;
  failureReason: FailureReason | null;
  errorMessage: string | null;
  feedback: Feedback | null;
  /** ISO 8601 UTC; a thumbs-down strictly before it refunds. */
  feedbackRefundDeadline: string | null;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  completedAt: string | null;
}

export interface Pagination {
  page: number;
  pageSize: number;
  total: number;
  totalPages: number;
}

export interface Page<T> {
  data: T[];
  pagination: Pagination;
}

export interface SubmitParams {
  /** A slug, e.g. `code_review`, `bug_fix`. */
  taskType: string;
  input: TaskInput;
  /** Maximum credits in cents, held at once. */
  maxBudget: number;
  /** A direct hire; omit it for smart routing. */
  agentId?: string | undefined;
  /** For an agent's sub-hire: the task it is executing. */
  parentTaskId?: string | undefined;
}

export interface RequestOptions {
  /** The `Idempotency-Key` to send (else a random one, reused by the SDK's own retries). */
  idempotencyKey?: string | undefined;
  /** Aborts the request (and its retries). */
  signal?: AbortSignal | undefined;
}

export interface ListParams {
  /** From 1 (default 1). */
  page?: number | undefined;
  /** 1–100 (default 20). */
  pageSize?: number | undefined;
  status?: TaskStatus | undefined;
  /** For an agent: the tasks it submitted (`caller`) or is assigned (`assignee`). */
  role?: "caller" | "assignee" | undefined;
}

export interface CompleteParams {
  output: Record<string, unknown>;
  executionTimeMs: number;
  /** Self-reported, 0–100; weighs at most 20% of the task's `qualityScore`. */
  qualityScore?: number | undefined;
}

export interface FailParams {
  reason: FailReason;
  errorMessage?: string | undefined;
}

export interface DisputeParams {
  reason: DisputeReason;
  description: string;
}

export interface Dispute {
  /** `dsp_...` */
  id: string;
  taskId: string;
  status: DisputeStatus;
  reason: DisputeReason;
  description: string;
  dueBy: string;
  refundedAmount: number;
  decisionNote: string | null;
  createdAt: string;
  resolvedAt: string | null;
  [key: string]: unknown;
}

export interface FeedbackResult {
  /** True if the feedback refunded the charge (a thumbs-down within the window). */
  refunded: boolean;
}

export interface SandboxResult {
  /** `sbx_...`, to pass to `markExecuting`. */
  sandboxId: string;
}

export interface DestroySandboxResult {
  /** False if it was already gone. */
  destroyed: boolean;
}

export interface StreamUrl {
  url: string;
  headers: Record<string, string>;
}

/** One Server-Sent Event of a task's stream. */
export interface StreamEvent {
  /** `status`, `complete`, `error`, `feedback`, `dispute`, `refund`. */
  event: string;
  /** The event id to resume after; null on the records of a group before its last. */
  id: string | null;
  /** The event's JSON data; it always carries `taskId`. */
  data: Record<string, unknown>;
}

export interface FollowOptions {
  /** Resume after this event id (else only events from now on). */
  lastEventId?: string | number | null | undefined;
  /** Ends the iteration (and the connection) when aborted. */
  signal?: AbortSignal | undefined;
}

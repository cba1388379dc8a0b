// Shapes of the /v1 API (shared/orchestrate/api/schemas.py).

export interface ErrorItem {
  path: string;
  message: string;
  line: number | null;
  column: number | null;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface WorkflowSummary {
  id: string;
  name: string;
  description: string;
  version: number;
  created_at: string;
  updated_at: string;
}

export interface InputSpec {
  type?: string;
  default?: unknown;
  description?: string;
  required?: boolean;
  enum?: unknown[];
}

export interface Workflow extends WorkflowSummary {
  source: string | null;
  spec: { inputs?: Record<string, InputSpec>; steps?: { id: string; needs?: string[] }[] } & Record<string, unknown>;
}

export interface Validation {
  valid: boolean;
  name: string | null;
  steps: string[];
  inputs: Record<string, InputSpec>;
  errors: ErrorItem[];
}

export interface Template {
  id: string;
  name: string;
  description: string;
  source: string;
}

export type RunStatus = "queued" | "running" | "paused" | "succeeded" | "failed" | "cancelled";
export type StepStatus = "pending" | "queued" | "running" | "waiting" | "succeeded" | "failed" | "skipped" | "cancelled";
/** What a step shows: its stored status, or `retrying` between a failed attempt and the next. */
export type ShownStatus = StepStatus | "retrying";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface RunError {
  type: string;
  message: string;
  step_id: string | null;
}

export interface Step {
  id: string;
  status: StepStatus;
  attempt: number;
  prompt: string | null;
  output: string | null;
  outputs: Record<string, unknown> | null;
  error: RunError | null;
  model: string | null;
  usage: Usage;
  latency_ms: number | null;
  queued_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  /** Issue 12: absent on older servers (a prompt step, never waiting, not reused). */
  kind?: StepKind;
  waiting?: Waiting | null;
  child_run_id?: string | null;
  reused?: boolean;
}

export type StepKind = "prompt" | "http" | "approval" | "wait" | "workflow";

export interface ApprovalField {
  name: string;
  type: "string" | "number" | "integer" | "boolean" | "array";
  description?: string;
}

/** What a `waiting` step waits for (never the callback token). */
export interface Waiting {
  kind: StepKind | string;
  until: string | null;
  message: string | null;
  fields: ApprovalField[];
  callback_expires_at: string | null;
}

export interface RunSummary {
  id: string;
  workflow: string | null;
  workflow_id: string | null;
  status: RunStatus;
  mode: "auto" | "step";
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown> | null;
  error: RunError | null;
  usage: Usage;
  webhook_url: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  /** A child run: the run and workflow step that started it. */
  parent?: { run_id: string; step_id: string } | null;
  /** A rerun: the run it reuses and the step it starts from. */
  rerun_of?: { run_id: string; from: string } | null;
}

export interface Run extends RunSummary {
  steps: Step[];
}

export interface RunEvent {
  seq: number;
  type: string;
  step_id: string | null;
  data: Record<string, unknown>;
  created_at: string;
}

/** POST /v1/runs/{id}/export with store: true */
export interface StoredExport {
  url: string;
  expires_at: string;
  key: string;
  format: "json" | "md";
  bytes: number;
}

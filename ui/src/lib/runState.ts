// A run as the Studio shows it: the last fetched run plus the events that arrived since.
import type { Run, RunEvent, RunStatus, ShownStatus, Step, StepStatus, Waiting } from "./types";

const STEP_EVENTS: Record<string, StepStatus> = {
  "step.queued": "queued",
  "step.started": "running",
  "step.waiting": "waiting",
  "step.succeeded": "succeeded",
  "step.failed": "failed",
  "step.skipped": "skipped",
  "step.cancelled": "cancelled",
  "step.retrying": "queued",
};

const RUN_EVENTS: Record<string, RunStatus> = {
  "run.queued": "queued",
  "run.started": "running",
  "run.paused": "paused",
  "run.resumed": "running",
  "run.retried": "running",
  "run.succeeded": "succeeded",
  "run.failed": "failed",
  "run.cancelled": "cancelled",
};

export const FINISHED: ReadonlySet<RunStatus> = new Set(["succeeded", "failed", "cancelled"]);

/** Apply events to a run's statuses (outputs come with the next fetch). */
export function applyEvents(run: Run, events: RunEvent[]): Run {
  if (events.length === 0) return run;
  let status = run.status;
  const changed = new Map<string, StepStatus>();
  const waiting = new Map<string, Waiting | null>();
  for (const e of events) {
    if (e.step_id && e.type in STEP_EVENTS) {
      changed.set(e.step_id, STEP_EVENTS[e.type]);
      waiting.set(e.step_id, e.type === "step.waiting" ? waitingOf(e.data) : null);
    } else if (e.type in RUN_EVENTS) status = RUN_EVENTS[e.type];
  }
  const steps = changed.size
    ? run.steps.map((s): Step => (changed.has(s.id) ? { ...s, status: changed.get(s.id)!, waiting: waiting.get(s.id) ?? (changed.get(s.id) === "waiting" ? s.waiting : null) } : s))
    : run.steps;
  return { ...run, status, steps };
}

/** What a `step.waiting` event says the step waits for (never its callback URL). */
function waitingOf(data: Record<string, unknown>): Waiting | null {
  if (typeof data.kind !== "string") return null;
  const text = (v: unknown) => (typeof v === "string" ? v : null);
  return {
    kind: data.kind,
    until: text(data.until),
    message: text(data.message),
    fields: Array.isArray(data.fields) ? (data.fields as Waiting["fields"]) : [],
    callback_expires_at: text(data.callback_expires_at),
  };
}

/** `retrying` while a step waits for its next attempt after a failed one. */
export function shownStatus(step: Step, lastEvent: Map<string, string>): ShownStatus {
  if (step.status === "queued" && lastEvent.get(step.id) === "step.retrying") return "retrying";
  return step.status;
}

export function lastEvents(events: RunEvent[], into = new Map<string, string>()): Map<string, string> {
  for (const e of events) if (e.step_id) into.set(e.step_id, e.type);
  return into;
}

export type Control = "pause" | "resume" | "step" | "cancel" | "retry";

/** The controls the run's state allows (shared/orchestrate/engine/decide.py). */
export function allowedControls(run: Pick<Run, "status" | "mode">): Control[] {
  switch (run.status) {
    case "queued":
    case "running":
      return ["pause", "cancel"];
    case "paused":
      return run.mode === "step" ? ["resume", "step", "cancel"] : ["resume", "cancel"];
    case "failed":
    case "cancelled":
      return ["retry"];
    default:
      return [];
  }
}

export function totalTokens(run: Run): number {
  const steps = run.steps.reduce((n, s) => n + (s.usage?.total_tokens ?? 0), 0);
  return Math.max(run.usage?.total_tokens ?? 0, steps);
}

export function elapsedMs(run: Pick<Run, "started_at" | "finished_at" | "created_at" | "duration_ms">, now: number): number | null {
  if (run.duration_ms !== null && run.duration_ms !== undefined && run.finished_at) return run.duration_ms;
  const start = run.started_at ?? run.created_at;
  if (!start) return null;
  const end = run.finished_at ? Date.parse(run.finished_at) : now;
  return Math.max(0, end - Date.parse(start));
}

import { describe, expect, it } from "vitest";
import { allowedControls, applyEvents, lastEvents, shownStatus } from "./runState";
import type { Run, RunEvent, Step } from "./types";

const step = (id: string, status: Step["status"] = "pending"): Step => ({
  id,
  status,
  attempt: 0,
  prompt: null,
  output: null,
  outputs: null,
  error: null,
  model: null,
  usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
  latency_ms: null,
  queued_at: null,
  started_at: null,
  finished_at: null,
});

const run = (steps: Step[]): Run => ({
  id: "r",
  workflow: "w",
  workflow_id: "w",
  status: "queued",
  mode: "auto",
  inputs: {},
  outputs: null,
  error: null,
  usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
  webhook_url: null,
  created_at: "2026-01-01T00:00:00Z",
  started_at: null,
  finished_at: null,
  duration_ms: null,
  steps,
});

const ev = (seq: number, type: string, step_id: string | null = null): RunEvent => ({ seq, type, step_id, data: {}, created_at: "" });

describe("run state from events", () => {
  it("moves steps and the run through their statuses", () => {
    const r = applyEvents(run([step("a"), step("b")]), [
      ev(1, "run.queued"),
      ev(2, "step.queued", "a"),
      ev(3, "run.started"),
      ev(4, "step.started", "a"),
      ev(5, "step.succeeded", "a"),
      ev(6, "step.queued", "b"),
      ev(7, "run.paused"),
    ]);
    expect(r.status).toBe("paused");
    expect(r.steps.map((s) => s.status)).toEqual(["succeeded", "queued"]);
  });

  it("marks a step waiting while the run stays running, until it is answered", () => {
    const waiting = { ...ev(3, "step.waiting", "review"), data: { attempt: 1, kind: "approval", until: null, message: "Ship?", fields: [{ name: "ok", type: "boolean" }], callback_url: "http://x/v1/callbacks/secret" } };
    const r = applyEvents(run([step("review")]), [ev(1, "run.started"), ev(2, "step.started", "review"), waiting]);
    expect(r.status).toBe("running");
    expect(r.steps[0].status).toBe("waiting");
    // What it waits for comes with the event; the callback URL is not kept.
    expect(r.steps[0].waiting).toEqual({ kind: "approval", until: null, message: "Ship?", fields: [{ name: "ok", type: "boolean" }], callback_expires_at: null });
    const answered = applyEvents(r, [ev(4, "step.succeeded", "review")]).steps[0];
    expect(answered.status).toBe("succeeded");
    expect(answered.waiting).toBeNull();
  });

  it("shows retrying between attempts", () => {
    const events = [ev(1, "step.started", "a"), ev(2, "step.retrying", "a")];
    const r = applyEvents(run([step("a")]), events);
    expect(shownStatus(r.steps[0], lastEvents(events))).toBe("retrying");
    const more = [...events, ev(3, "step.started", "a")];
    expect(shownStatus(applyEvents(r, more.slice(2)).steps[0], lastEvents(more))).toBe("running");
  });

  it("offers only the controls the state allows", () => {
    expect(allowedControls({ status: "running", mode: "auto" })).toEqual(["pause", "cancel"]);
    expect(allowedControls({ status: "paused", mode: "auto" })).toEqual(["resume", "cancel"]);
    expect(allowedControls({ status: "paused", mode: "step" })).toEqual(["resume", "step", "cancel"]);
    expect(allowedControls({ status: "failed", mode: "auto" })).toEqual(["retry"]);
    expect(allowedControls({ status: "succeeded", mode: "auto" })).toEqual([]);
  });
});

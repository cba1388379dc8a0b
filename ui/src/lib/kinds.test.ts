import { describe, expect, it } from "vitest";
import { clock, downstream, errorsByField, formValues, kindLabel, parseField, parseInput, parseOutput, reusable, waitingText } from "./kinds";
import type { ApprovalField, Step } from "./types";

const step = (id: string, extra: Partial<Step> = {}): Step => ({
  id,
  status: "succeeded",
  attempt: 1,
  prompt: null,
  output: `answer of ${id}`,
  outputs: null,
  error: null,
  model: null,
  usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
  latency_ms: 5,
  queued_at: null,
  started_at: null,
  finished_at: null,
  ...extra,
});

describe("kind labels", () => {
  it("names each kind, prompt when the server does not say", () => {
    expect(["http", "approval", "wait", "workflow", "prompt"].map(kindLabel)).toEqual(["HTTP", "Approval", "Wait", "Workflow", "Prompt"]);
    expect(kindLabel(undefined)).toBe("Prompt");
    expect(kindLabel("email")).toBe("email");
  });
});

describe("what a waiting step waits for", () => {
  const now = new Date(2026, 11, 2, 9, 0);
  it("says it in words", () => {
    expect(waitingText({ kind: "approval", until: null })).toBe("waiting for approval");
    expect(waitingText({ kind: "workflow", until: null })).toBe("waiting for child run");
    expect(waitingText(null, "approval")).toBe("waiting for approval");
    expect(waitingText({ kind: "wait", until: null })).toBe("waiting");
  });
  it("shows the time of a wait, with the day when it is not today", () => {
    const today = new Date(2026, 11, 2, 14, 5).toISOString();
    const later = new Date(2026, 11, 3, 14, 5).toISOString();
    expect(waitingText({ kind: "wait", until: today }, "wait", now, "en-GB")).toBe("waiting until 14:05");
    expect(clock(later, now, "en-GB")).toBe("3 Dec, 14:05");
    // An approval with a timeout waits for the person, not the clock.
    expect(waitingText({ kind: "approval", until: today }, "approval", now, "en-GB")).toBe("waiting for approval");
  });
});

describe("the approval form's values", () => {
  const fields: ApprovalField[] = [
    { name: "note", type: "string" },
    { name: "score", type: "number" },
    { name: "count", type: "integer" },
    { name: "ship", type: "boolean" },
    { name: "tags", type: "array" },
  ];
  it("are typed by the declared field", () => {
    const { values, errors } = formValues(fields, { note: " ok ", score: "4.5", count: "-3", ship: true, tags: "a\n\n b \nc\n" });
    expect(errors).toEqual({});
    expect(values).toEqual({ note: " ok ", score: 4.5, count: -3, ship: true, tags: ["a", "b", "c"] });
  });
  it("name what is mistyped and leave out empty numbers for the server to judge", () => {
    const { values, errors } = formValues(fields, { score: "four", count: "2.5" });
    expect(errors).toEqual({ score: "must be a number", count: "must be a whole number" });
    expect(values).toEqual({ note: "", ship: false, tags: [] });
    expect(parseField({ name: "n", type: "number" }, " ")).toEqual({ missing: true });
    expect(parseField({ name: "n", type: "number" }, "1e3")).toEqual({ value: 1000 });
  });
});

describe("a problem's errors", () => {
  it("land next to the field they name", () => {
    const items = [
      { path: "body.fields.score", message: "Field required", line: null, column: null },
      { path: "fields.tags[0]", message: "not a string", line: null, column: null },
      { path: "reason", message: "too long", line: null, column: null },
    ];
    expect(errorsByField(items, ["score", "tags"])).toEqual({ score: "Field required", tags: "not a string", "": "too long" });
    expect(errorsByField([{ path: "inputs.topic", message: "required", line: null, column: null }], ["topic"], "inputs")).toEqual({ topic: "required" });
  });
});

describe("rerun from a step", () => {
  // a -> b -> d, a -> c (c is not downstream of b)
  const deps = new Map([
    ["a", []],
    ["b", ["a"]],
    ["c", ["a"]],
    ["d", ["b", "c"]],
  ]);
  it("runs again the step and everything after it", () => {
    expect([...downstream(deps, "b")].sort()).toEqual(["b", "d"]);
    expect([...downstream(deps, "a")].sort()).toEqual(["a", "b", "c", "d"]);
  });
  it("offers the outputs of the steps it reuses for editing", () => {
    const steps = [step("a"), step("b"), step("c", { status: "failed" }), step("d"), step("a[0]")];
    expect(reusable(steps, deps, "b").map((s) => s.id)).toEqual(["a", "c"]);
    expect(reusable(steps, deps, "d").map((s) => s.id)).toEqual(["a", "b", "c"]);
    expect(reusable(steps, deps, "a").map((s) => s.id)).toEqual([]);
  });
  it("reads an edited output as text, or as JSON for a structured one", () => {
    expect(parseOutput(step("a"), "new text")).toEqual({ value: "new text" });
    const structured = step("a", { outputs: { audience: "x" } });
    expect(parseOutput(structured, '{"audience": "y"}')).toEqual({ value: { audience: "y" } });
    expect(parseOutput(structured, "[1]")).toEqual({ error: 'must be a JSON object ({"field": value})' });
    expect("error" in parseOutput(structured, "{oops")).toBe(true);
  });
  it("reads edited inputs by the type of the recorded value", () => {
    expect(parseInput("number", "12")).toEqual({ value: 12 });
    expect(parseInput("number", "")).toEqual({ error: "must be a number" });
    expect(parseInput("json", '["x"]')).toEqual({ value: ["x"] });
    expect(parseInput("boolean", true)).toEqual({ value: true });
  });
});

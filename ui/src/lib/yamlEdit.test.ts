import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { addStep, moveStep, readSteps, removeStep, setStepField, setStepNeeds, setStepSetting, stepLine } from "./yamlEdit";

const SOURCE = `# Top comment: what this does
name: Demo
steps:
  # the first step
  - id: research
    prompt: "Who buys {{ inputs.product }}?"

  - id: outline          # runs in parallel with taglines
    prompt: |
      Outline for {{ steps.research.output }}
    model: gpt-4o-mini

  - id: taglines
    needs: [research]
    prompt: Taglines please
`;

describe("step cards edit the YAML", () => {
  it("reads every step's fields", () => {
    const { steps, error } = readSteps(SOURCE);
    expect(error).toBeNull();
    expect(steps.map((s) => s.id)).toEqual(["research", "outline", "taglines"]);
    expect(steps[1]).toMatchObject({ model: "gpt-4o-mini", prompt: "Outline for {{ steps.research.output }}\n" });
    expect(steps[2].needs).toEqual(["research"]);
  });

  it("reports unreadable YAML instead of throwing", () => {
    const { steps, error } = readSteps("steps: [\n");
    expect(steps).toEqual([]);
    expect(error).toBeTruthy();
  });

  it("changes a prompt and keeps comments and quoting", () => {
    const out = setStepField(SOURCE, 0, "prompt", "Who really buys {{ inputs.product }}?");
    expect(out).toContain('prompt: "Who really buys {{ inputs.product }}?"');
    expect(out).toContain("# Top comment: what this does");
    expect(out).toContain("# the first step");
    expect(out).toContain("# runs in parallel with taglines");
    expect(parse(out).steps[0].prompt).toBe("Who really buys {{ inputs.product }}?");
  });

  it("writes a multi-line prompt as a block", () => {
    const out = setStepField(SOURCE, 2, "prompt", "line one\nline two");
    expect(out).toContain("prompt: |");
    expect(parse(out).steps[2].prompt).toBe("line one\nline two");
  });

  it("adds and removes optional fields", () => {
    const withWhen = setStepField(SOURCE, 0, "when", "inputs.product != ''");
    expect(parse(withWhen).steps[0].when).toBe("inputs.product != ''");
    const without = setStepField(SOURCE, 1, "model", "");
    expect(parse(without).steps[1].model).toBeUndefined();
    expect(without).toContain("# runs in parallel with taglines");
  });

  it("edits needs as a flow list", () => {
    const out = setStepNeeds(SOURCE, 2, ["research", "outline"]);
    expect(parse(out).steps[2].needs).toEqual(["research", "outline"]);
    expect(out).toContain("needs: [research, outline]");
    expect(parse(setStepNeeds(SOURCE, 2, [])).steps[2].needs).toBeUndefined();
  });

  it("reorders steps with their comments", () => {
    const out = moveStep(SOURCE, 1, 2);
    const data = parse(out);
    expect(data.steps.map((s: { id: string }) => s.id)).toEqual(["research", "taglines", "outline"]);
    expect(out).toMatch(/- id: outline +# runs in parallel with taglines/);
    expect(out).toContain("needs: [research]");
    expect(out.indexOf("# runs in parallel")).toBeGreaterThan(out.indexOf("id: taglines"));
    expect(out).toContain("# Top comment: what this does");
    // Blank lines between steps stay.
    expect(out).toMatch(/Taglines please\n\n {2}- id: outline/);
  });

  it("moves the first step down", () => {
    const out = moveStep(SOURCE, 0, 2);
    expect(parse(out).steps.map((s: { id: string }) => s.id)).toEqual(["outline", "taglines", "research"]);
    expect(out).toContain("# the first step");
  });

  it("adds a step with a fresh id and removes one", () => {
    const { text, id } = addStep(SOURCE);
    expect(id).toBe("step_4");
    expect(parse(text).steps).toHaveLength(4);
    const removed = removeStep(text, 1);
    expect(parse(removed).steps.map((s: { id: string }) => s.id)).toEqual(["research", "taglines", "step_4"]);
    expect(removed).toContain("# Top comment: what this does");
  });

  it("finds the line a step starts on", () => {
    expect(stepLine(SOURCE, 0)).toBe(5);
    expect(stepLine(SOURCE, 2)).toBe(13);
  });
});

const KINDS_SOURCE = `name: Kinds
steps:
  - id: fetch            # the API call
    http:
      method: POST
      url: "https://api.example.com/{{ inputs.id }}"   # quoted on purpose
      headers: { Authorization: "Bearer {{ secrets.TOKEN }}" }
  # a person signs off
  - id: review
    approval:
      message: |
        Ship {{ steps.fetch.output }}?
      fields:
        - { name: ok, type: boolean }
  - id: pause
    wait: { seconds: 30 }
  - id: child
    workflow:
      name: Other   # by name
      inputs: { topic: "{{ inputs.id }}" }
`;

describe("step cards of every kind", () => {
  it("read each kind and its settings", () => {
    const { steps } = readSteps(KINDS_SOURCE);
    expect(steps.map((s) => s.kind)).toEqual(["http", "approval", "wait", "workflow"]);
    expect(steps[0].settings).toEqual({ "http.method": "POST", "http.url": "https://api.example.com/{{ inputs.id }}" });
    expect(steps[1].settings).toEqual({ "approval.message": "Ship {{ steps.fetch.output }}?\n" });
    expect(steps[2].settings).toEqual({ "wait.seconds": "30", "wait.until": "" });
    expect(steps[3].settings).toEqual({ "workflow.name": "Other", "workflow.id": "" });
  });

  it("round-trip untouched: an edit elsewhere keeps every kind, comment and setting", () => {
    const out = setStepField(KINDS_SOURCE, 3, "when", "steps.review.status == 'succeeded'");
    const { when, ...rest } = parse(out).steps[3];
    expect(when).toBe("steps.review.status == 'succeeded'");
    expect({ ...parse(out), steps: [...parse(out).steps.slice(0, 3), rest] }).toEqual(parse(KINDS_SOURCE));
    for (const comment of ["# the API call", "# quoted on purpose", "# a person signs off", "# by name"]) expect(out).toContain(comment);
    expect(out).toContain('url: "https://api.example.com/{{ inputs.id }}"');
  });

  it("edit a kind's settings and keep the comments and quoting", () => {
    let out = setStepSetting(KINDS_SOURCE, 0, "http.url", "https://api.example.com/v2/{{ inputs.id }}");
    expect(out).toMatch(/url: "https:\/\/api.example.com\/v2\/\{\{ inputs.id \}\}" +# quoted on purpose/);
    out = setStepSetting(out, 2, "wait.seconds", "90");
    expect(parse(out).steps[2].wait).toEqual({ seconds: 90 });
    out = setStepSetting(out, 2, "wait.until", "{{ inputs.when }}");
    out = setStepSetting(out, 2, "wait.seconds", "");
    expect(parse(out).steps[2].wait).toEqual({ until: "{{ inputs.when }}" });
    out = setStepSetting(out, 1, "approval.message", "Ship it?\nReally?");
    expect(parse(out).steps[1].approval.message).toBe("Ship it?\nReally?");
    expect(parse(out).steps[1].approval.fields).toEqual([{ name: "ok", type: "boolean" }]);
    for (const comment of ["# the API call", "# quoted on purpose", "# a person signs off", "# by name"]) expect(out).toContain(comment);
    expect(parse(out).steps[0].http.headers).toEqual({ Authorization: "Bearer {{ secrets.TOKEN }}" });
  });

  it("add a step of each kind", () => {
    let text = KINDS_SOURCE;
    for (const kind of ["http", "approval", "wait", "workflow"] as const) text = addStep(text, kind).text;
    const steps = readSteps(text).steps.slice(4);
    expect(steps.map((s) => s.kind)).toEqual(["http", "approval", "wait", "workflow"]);
    expect(new Set(steps.map((s) => s.id)).size).toBe(4);
    expect(parse(text).steps[6].wait).toEqual({ seconds: 60 });
    expect(text).toContain("# the API call");
  });
});

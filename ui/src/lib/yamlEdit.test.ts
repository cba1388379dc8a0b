import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { addStep, moveStep, readSteps, removeStep, setStepField, setStepNeeds, stepLine } from "./yamlEdit";

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

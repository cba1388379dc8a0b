import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { schemaText } from "./schemaText";

describe("the text completion reads", () => {
  const source = `# a comment
name: Demo
steps:
  - id: a
    prompt: |
      Line one # not a comment
      Line two
    model: gpt-4o  # trailing
  - id: b
    prompt: >-
      folded
`;
  it("keeps every position and the structure", () => {
    const out = schemaText(source);
    expect(out.length).toBe(source.length);
    expect(out.split("\n").map((l) => l.length)).toEqual(source.split("\n").map((l) => l.length));
    const data = parse(out);
    expect(data.steps.map((s: { id: string }) => s.id)).toEqual(["a", "b"]);
    expect(data.steps[0].model).toBe("gpt-4o");
    expect(out).not.toContain("Line one");
    expect(out).not.toContain("# a comment");
  });
});

describe("plain values", () => {
  it("become one word of the same length", () => {
    const out = schemaText("name: Launch kit  # c\nsteps:\n  - id: a\n    prompt: Say hi to {{ x }}\n");
    expect(out).toBe("name: xxxxxxxxxx     \nsteps:\n  - id: a\n    prompt: xxxxxxxxxxxxxxxxx\n");
  });
});

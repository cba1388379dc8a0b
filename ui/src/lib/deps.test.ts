import { describe, expect, it } from "vitest";
import { dependencies } from "./deps";

describe("dependencies", () => {
  it("finds references, bare ids, needs and step inputs", () => {
    const deps = dependencies([
      { id: "research", prompt: "Who buys {{ inputs.research_topic }}?" },
      { id: "slogan", prompt: "A slogan for {{ steps.research.outputs.audience }}" },
      { id: "email", prompt: "Mail about {{ research }}" },
      { id: "review", needs: ["slogan"], when: "steps.email.status == 'succeeded'", prompt: "x" },
      { id: "extra", prompt: "y", inputs: [{ name: "a", source: "review" }] },
    ]);
    expect(deps.get("research")).toEqual([]);
    expect(deps.get("slogan")).toEqual(["research"]);
    expect(deps.get("email")).toEqual(["research"]);
    expect(deps.get("review")!.sort()).toEqual(["email", "slogan"]);
    expect(deps.get("extra")).toEqual(["review"]);
  });

  it("chains a conversation in order", () => {
    const deps = dependencies([{ id: "a", prompt: "hi" }, { id: "b", prompt: "more" }, { id: "c", prompt: "end" }]);
    expect([...deps.entries()]).toEqual([["a", []], ["b", ["a"]], ["c", ["b"]]]);
  });
});

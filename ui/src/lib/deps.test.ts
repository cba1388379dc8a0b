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

  it("reads the templates of every kind and for_each", () => {
    const deps = dependencies([
      { id: "fetch", http: { url: "https://api.example.com/{{ inputs.id }}" } },
      { id: "post", http: { method: "POST", url: "https://x.example", headers: { "X-Id": "{{ steps.fetch.outputs.id }}" }, body: { text: ["{{ steps.fetch.output }}"] } } },
      { id: "review", approval: { message: "Ship {{ steps.post.output }}?" } },
      { id: "later", wait: { until: "{{ steps.review.outputs.when }}" } },
      { id: "child", workflow: { name: "Other", inputs: { topic: "{{ steps.later.status }}" } } },
      { id: "each", for_each: "{{ steps.fetch.outputs.items }}", prompt: "About {{ item }}" },
    ]);
    expect([...deps.entries()]).toEqual([["fetch", []], ["post", ["fetch"]], ["review", ["post"]], ["later", ["review"]], ["child", ["later"]], ["each", ["fetch"]]]);
  });
});

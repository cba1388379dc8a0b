import { describe, expect, it } from "vitest";
import { wordDiff } from "./diff";

const join = (parts: { kind: string; text: string }[], kinds: string[]) =>
  parts.filter((p) => kinds.includes(p.kind)).map((p) => p.text).join("");

describe("word diff", () => {
  it("marks changed words and keeps both texts recoverable", () => {
    const a = "The quick brown fox jumps over the lazy dog";
    const b = "The quick red fox leaps over the lazy dog today";
    const parts = wordDiff(a, b);
    expect(join(parts, ["same", "removed"])).toBe(a);
    expect(join(parts, ["same", "added"])).toBe(b);
    expect(parts.filter((p) => p.kind === "removed").map((p) => p.text.trim())).toEqual(["brown", "jumps"]);
    expect(parts.filter((p) => p.kind === "added").map((p) => p.text.trim())).toEqual(["red", "leaps", "today"]);
  });

  it("equal texts are one unchanged part", () => {
    expect(wordDiff("same words", "same words")).toEqual([{ kind: "same", text: "same words" }]);
  });

  it("handles empty sides", () => {
    expect(wordDiff("", "new text")).toEqual([{ kind: "added", text: "new text" }]);
    expect(wordDiff("old", "")).toEqual([{ kind: "removed", text: "old" }]);
  });
});

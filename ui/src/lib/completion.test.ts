import { describe, expect, it } from "vitest";
import { EditorState } from "@codemirror/state";
import { yaml } from "@codemirror/lang-yaml";
import { CompletionContext } from "@codemirror/autocomplete";
import { completion } from "./completion";
import { forCompletion } from "./editorSchema";

// The shapes pydantic gives the language's schema (`orchestrate schema`), in small.
const SCHEMA = {
  $defs: {
    HttpCall: {
      additionalProperties: false,
      properties: { method: { default: "GET", enum: ["GET", "POST"], type: "string" }, url: { minLength: 1, type: "string" }, timeout: { type: "number" } },
      required: ["url"],
      type: "object",
    },
    RetrySpec: { additionalProperties: false, properties: { max_attempts: { type: "integer" }, max_delay: { type: "number" } }, type: "object" },
    Step: {
      additionalProperties: false,
      properties: {
        id: { type: "string" },
        prompt: { anyOf: [{ minLength: 1, type: "string" }, { type: "null" }], default: null },
        http: { anyOf: [{ $ref: "#/$defs/HttpCall" }, { type: "null" }], default: null },
        wait: { anyOf: [{ type: "object", properties: { seconds: { type: "number" } } }, { type: "null" }], default: null },
        retry: { $ref: "#/$defs/RetrySpec", default: { max_attempts: 3 } },
        when: { anyOf: [{ type: "string" }, { type: "null" }], default: null },
      },
      required: ["id"],
      type: "object",
      oneOf: [{ required: ["prompt"] }, { required: ["http"] }, { required: ["wait"] }],
    },
  },
  properties: { name: { type: "string" }, steps: { items: { $ref: "#/$defs/Step" }, type: "array" } },
  required: ["name", "steps"],
  type: "object",
};

function labels(text: string, schema: Record<string, unknown> = forCompletion(SCHEMA)): string[] {
  const state = EditorState.create({ doc: text, extensions: [yaml()] });
  const result = completion(schema)(new CompletionContext(state, text.length, true));
  if (!result || result instanceof Promise) return [];
  return result.options.map((o) => o.label).sort();
}

const HEAD = "name: K\nsteps:\n  - id: a\n    prompt: hi\n  - id: b\n";

describe("schema completion", () => {
  it("offers a step's kinds", () => {
    expect(labels(`${HEAD}    ht`)).toEqual(["http"]);
    expect(labels(`${HEAD}    w`)).toEqual(["wait", "when"]);
  });

  it("offers the settings inside a kind and inside a $ref'd object of a step", () => {
    expect(labels(`${HEAD}    http:\n      u`)).toEqual(["url"]);
    expect(labels(`${HEAD}    http:\n      url: x\n      m`)).toEqual(["method"]);
    expect(labels(`${HEAD}    retry:\n      max_`)).toEqual(["max_attempts", "max_delay"]);
    expect(labels(`${HEAD}    wait:\n      s`)).toEqual(["seconds"]);
  });

  it("needs the reshaped schema for the nested ones (the raw one loses its way)", () => {
    expect(labels(`${HEAD}    retry:\n      max_`, SCHEMA)).toEqual([]);
  });
});

describe("the reshaped schema", () => {
  it("inlines $defs, unwraps nullable anyOf and drops the kind oneOf", () => {
    const out = forCompletion(SCHEMA) as { properties: { steps: { items: Record<string, unknown> } } };
    const step = out.properties.steps.items as { properties: Record<string, Record<string, unknown>>; oneOf?: unknown };
    expect(step.oneOf).toBeUndefined();
    expect(step.properties.http.properties).toHaveProperty("url");
    expect(step.properties.http.anyOf).toBeUndefined();
    expect(step.properties.retry).toMatchObject({ type: "object", default: { max_attempts: 3 } });
    expect(step.properties.prompt).toEqual({ minLength: 1, type: "string", default: null });
    expect(out).not.toHaveProperty("$defs");
  });
});

// The language's JSON Schema (GET /v1/schema, pydantic's output) reshaped for the editor's
// completion and hover (codemirror-json-schema on json-schema-library's Draft 7), which lose
// their way on three of its constructs: `$ref`s into `$defs` below a list item, a nullable
// `anyOf: [X, {type: null}]`, and the step's `oneOf` of `required` alternatives (exactly one
// kind), which a step being typed matches none of. The server still validates the real thing.

type Json = Record<string, unknown>;

export function forCompletion(schema: Json): Json {
  const defs = (schema.$defs ?? {}) as Record<string, Json>;
  const walk = (value: unknown, seen: readonly string[]): unknown => {
    if (Array.isArray(value)) return value.map((v) => walk(v, seen));
    if (!value || typeof value !== "object") return value;
    let node: Json = { ...(value as Json) };
    // A $ref into $defs is inlined (its siblings, such as `default`, kept); a recursive one stays.
    if (typeof node.$ref === "string" && node.$ref.startsWith("#/$defs/")) {
      const name = node.$ref.slice("#/$defs/".length);
      if (name in defs && !seen.includes(name)) {
        const { $ref: _, ...rest } = node;
        node = { ...(walk(defs[name], [...seen, name]) as Json), ...rest };
        seen = [...seen, name];
      }
    }
    if (Array.isArray(node.anyOf)) {
      const real = (node.anyOf as Json[]).filter((s) => s.type !== "null");
      if (real.length === 1) {
        const { anyOf: _, ...rest } = node;
        node = { ...rest, ...real[0] };
      }
    }
    if (Array.isArray(node.oneOf) && (node.oneOf as Json[]).every((s) => Object.keys(s).length === 1 && "required" in s)) {
      const { oneOf: _, ...rest } = node;
      node = rest;
    }
    const out: Json = {};
    for (const [k, v] of Object.entries(node)) if (k !== "$defs") out[k] = k === "$ref" ? v : walk(v, seen);
    return out;
  };
  return walk(schema, []) as Json;
}

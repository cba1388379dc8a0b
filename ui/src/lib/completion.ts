// Schema completion on the workflow YAML (codemirror-json-schema), read through a shadow
// text the library understands (lib/schemaText), with the schema reshaped for it
// (lib/editorSchema).
import { EditorState } from "@codemirror/state";
import { yaml } from "@codemirror/lang-yaml";
import { CompletionContext, type CompletionResult, type CompletionSource } from "@codemirror/autocomplete";
import { yamlCompletion } from "codemirror-json-schema/yaml";
import { stateExtensions } from "codemirror-json-schema";
import { schemaText } from "./schemaText";

const shadows = new WeakMap<object, EditorState>();

function shadowOf(text: string, schema: Record<string, unknown>): EditorState {
  return EditorState.create({ doc: schemaText(text), extensions: [yaml(), stateExtensions(schema as never)] });
}

/** The editor's state as the schema helpers should read it (see lib/schemaText). */
export function readable(state: EditorState, schema: Record<string, unknown>): EditorState {
  const cached = shadows.get(state.doc);
  if (cached) return cached;
  const shadow = shadowOf(state.doc.toString(), schema);
  shadows.set(state.doc, shadow);
  return shadow;
}

// A word alone on its line (`      ur|`) is, to YAML, the value of the key above it, so the
// library offers nothing; read as a key being typed (`ur:`), it completes the key.
const LONE_WORD = /^\s*(?:-\s+)?[A-Za-z_][\w-]*$/;

export function completion(schema: Record<string, unknown>): CompletionSource {
  const inner = yamlCompletion();
  const run = (state: EditorState, ctx: CompletionContext): CompletionResult | null => {
    const result = inner(new CompletionContext(state, ctx.pos, ctx.explicit));
    return Array.isArray(result) || !result || result.options.length === 0 ? null : result;
  };
  return (ctx) => {
    const found = run(readable(ctx.state, schema), ctx);
    if (found) return found;
    const line = ctx.state.doc.lineAt(ctx.pos);
    const before = ctx.state.sliceDoc(line.from, ctx.pos);
    if (!LONE_WORD.test(before) || ctx.state.sliceDoc(ctx.pos, line.to).trim() !== "") return null;
    const text = ctx.state.doc.toString();
    return run(shadowOf(`${text.slice(0, ctx.pos)}:${text.slice(ctx.pos)}`, schema), ctx);
  };
}

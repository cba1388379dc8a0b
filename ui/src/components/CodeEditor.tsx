// CodeMirror 6 on the workflow YAML: completion and hover docs from the language's JSON
// Schema, and the server's validation problems as lint marks at their line and column.
import { useEffect, useRef } from "react";
import { basicSetup } from "codemirror";
import { EditorView, keymap } from "@codemirror/view";
import { EditorState, type Extension } from "@codemirror/state";
import { yaml } from "@codemirror/lang-yaml";
import { lintGutter, setDiagnostics, type Diagnostic } from "@codemirror/lint";
import { yamlSchemaHover } from "codemirror-json-schema/yaml";
import { stateExtensions } from "codemirror-json-schema";
import { yamlLanguage } from "@codemirror/lang-yaml";
import { hoverTooltip } from "@codemirror/view";
import type { ErrorItem } from "../lib/types";
import { completion, readable } from "../lib/completion";

function hover(schema: Record<string, unknown>) {
  const inner = yamlSchemaHover();
  return (view: EditorView, pos: number, side: -1 | 1) => inner({ state: readable(view.state, schema) } as EditorView, pos, side);
}

export interface CodeEditorProps {
  value: string;
  onChange: (text: string) => void;
  errors: ErrorItem[];
  schema: Record<string, unknown> | null;
  /** Move the cursor to this line (a fresh object each time). */
  focus: { line: number; column?: number } | null;
  onSave?: () => void;
}

export function diagnostics(state: EditorState, errors: ErrorItem[]): Diagnostic[] {
  const doc = state.doc;
  return errors.map((e) => {
    const lineNo = Math.min(Math.max(e.line ?? 1, 1), doc.lines);
    const line = doc.line(lineNo);
    const from = Math.min(line.from + Math.max((e.column ?? 1) - 1, 0), line.to);
    // Mark from the column to the end of the line (at least one character).
    const to = from < line.to ? line.to : Math.min(from + 1, doc.length);
    return { from, to, severity: "error", message: e.path ? `${e.path}: ${e.message}` : e.message, source: "orchestrate" };
  });
}

export default function CodeEditor(props: CodeEditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const latest = useRef(props);
  latest.current = props;

  useEffect(() => {
    const extensions: Extension[] = [
      basicSetup,
      yaml(),
      lintGutter(),
      keymap.of([
        {
          key: "Mod-s",
          preventDefault: true,
          run: () => {
            latest.current.onSave?.();
            return true;
          },
        },
      ]),
      EditorView.updateListener.of((update) => {
        if (update.docChanged) latest.current.onChange(update.state.doc.toString());
      }),
      EditorView.lineWrapping,
      EditorView.contentAttributes.of({ "aria-label": "Workflow YAML" }),
      EditorView.theme({ "&": { height: "100%" }, ".cm-scroller": { fontFamily: "var(--mono)" } }),
    ];
    if (props.schema) {
      extensions.push(
        yamlLanguage.data.of({ autocomplete: completion(props.schema) }),
        hoverTooltip(hover(props.schema)),
        stateExtensions(props.schema as never),
      );
    }
    const v = new EditorView({
      parent: host.current!,
      state: EditorState.create({ doc: props.value, extensions }),
    });
    view.current = v;
    v.dispatch(setDiagnostics(v.state, diagnostics(v.state, props.errors)));
    return () => {
      v.destroy();
      view.current = null;
    };
    // The editor is created once per schema; text and marks are pushed below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.schema]);

  useEffect(() => {
    const v = view.current;
    if (!v) return;
    const current = v.state.doc.toString();
    if (current !== props.value) {
      v.dispatch({ changes: { from: 0, to: current.length, insert: props.value } });
    }
  }, [props.value]);

  useEffect(() => {
    const v = view.current;
    if (v) v.dispatch(setDiagnostics(v.state, diagnostics(v.state, props.errors)));
  }, [props.errors, props.value]);

  useEffect(() => {
    const v = view.current;
    if (!v || !props.focus) return;
    const line = v.state.doc.line(Math.min(Math.max(props.focus.line, 1), v.state.doc.lines));
    const pos = Math.min(line.from + Math.max((props.focus.column ?? 1) - 1, 0), line.to);
    v.dispatch({ selection: { anchor: pos }, effects: EditorView.scrollIntoView(pos, { y: "center" }) });
    v.focus();
  }, [props.focus]);

  return <div className="code-editor" ref={host} data-testid="yaml-editor" />;
}

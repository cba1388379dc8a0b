import { lazy, Suspense, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { parse } from "yaml";
import { api, ApiError, downloadBlob } from "../lib/api";
import { specKind } from "../lib/kinds";
import { forCompletion } from "../lib/editorSchema";
import { dependencies, type SpecStep } from "../lib/deps";
import { href, navigate } from "../lib/router";
import { useTabs, type Tab } from "../lib/tabs";
import type { ErrorItem, Validation } from "../lib/types";
import { stepLine } from "../lib/yamlEdit";
import { Confirm, ErrorBox, Spinner } from "../components/ui";
import { StepCards } from "../components/StepCards";
import { slug } from "./WorkflowList";

const CodeEditor = lazy(() => import("../components/CodeEditor"));
const Graph = lazy(() => import("../components/Graph"));

let schemaPromise: Promise<Record<string, unknown> | null> | null = null;
function loadSchema() {
  schemaPromise ??= api.schema().then(forCompletion).catch(() => null);
  return schemaPromise;
}

export default function EditorView({ workflowId }: { workflowId: string }) {
  const { tabs, open, close, dirty, update } = useTabs();
  const tab = tabs.find((t) => t.id === workflowId);
  const [error, setError] = useState<unknown>(null);
  const [closing, setClosing] = useState<Tab | null>(null);

  useEffect(() => {
    if (tab) return;
    let live = true;
    api
      .getWorkflow(workflowId)
      .then((wf) => live && open({ id: wf.id, name: wf.name, saved: wf.source ?? "", version: wf.version }))
      .catch((e) => live && setError(e));
    return () => {
      live = false;
    };
  }, [workflowId, tab, open]);

  const closeTab = (t: Tab) => {
    const rest = tabs.filter((x) => x.id !== t.id);
    close(t.id);
    if (t.id === workflowId) navigate(rest.length ? href.edit(rest[rest.length - 1].id) : href.workflows());
  };

  return (
    <section className="page editor-page">
      <nav className="tabs" aria-label="Open workflows">
        {tabs.map((t) => {
          const active = t.id === workflowId;
          const unsaved = dirty(t.id);
          return (
            <div key={t.id} className={`tab ${active ? "active" : ""}`}>
              <a aria-current={active ? "page" : undefined} href={href.edit(t.id)} className="tab-link">
                {t.name}
                {unsaved && <span className="unsaved"> (unsaved)</span>}
              </a>
              <button type="button" className="tab-close" aria-label={`Close ${t.name}`} title={`Close ${t.name}`} onClick={() => (unsaved ? setClosing(t) : closeTab(t))}>
                ×
              </button>
            </div>
          );
        })}
      </nav>
      <ErrorBox error={error} />
      {tab ? <WorkflowEditor key={tab.id} tab={tab} update={update} /> : !error && <Spinner label="Opening the workflow…" />}
      <Confirm
        open={closing !== null}
        title={`Close “${closing?.name ?? ""}” without saving?`}
        confirmLabel="Discard changes"
        cancelLabel="Keep editing"
        danger
        onCancel={() => setClosing(null)}
        onConfirm={() => {
          const t = closing;
          setClosing(null);
          if (t) closeTab(t);
        }}
        extra={
          <button
            type="button"
            onClick={async () => {
              const t = closing;
              setClosing(null);
              if (!t) return;
              try {
                const wf = await api.updateWorkflow(t.id, t.text);
                update(t.id, { saved: t.text, version: wf.version, name: wf.name });
                closeTab(t);
              } catch (e) {
                setError(e);
              }
            }}
          >
            Save and close
          </button>
        }
      >
        <p>Your changes to this workflow have not been saved.</p>
      </Confirm>
    </section>
  );
}

type Panel = "steps" | "graph";

function WorkflowEditor({ tab, update }: { tab: Tab; update: (id: string, patch: Partial<Tab>) => void }) {
  const [schema, setSchema] = useState<Record<string, unknown> | null | undefined>(undefined);
  const [validation, setValidation] = useState<Validation | null>(null);
  const [checking, setChecking] = useState(false);
  const [saving, setSaving] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [focus, setFocus] = useState<{ line: number; column?: number } | null>(null);
  const [panel, setPanel] = useState<Panel>("steps");
  const text = tab.text;
  const unsaved = text !== tab.saved;
  const seq = useRef(0);

  useEffect(() => {
    loadSchema().then(setSchema);
  }, []);

  const validate = useCallback(async (source: string): Promise<Validation | null> => {
    const mine = ++seq.current;
    setChecking(true);
    try {
      const v = await api.validate(source);
      if (mine === seq.current) setValidation(v);
      return v;
    } catch (e) {
      if (mine === seq.current) setError(e);
      return null;
    } finally {
      if (mine === seq.current) setChecking(false);
    }
  }, []);

  // Live validation a moment after typing stops.
  useEffect(() => {
    const t = setTimeout(() => validate(text), 400);
    return () => clearTimeout(t);
  }, [text, validate]);

  const setText = useCallback((next: string) => {
    setMessage(null);
    update(tab.id, { text: next });
  }, [tab.id, update]);

  const save = useCallback(async (): Promise<boolean> => {
    setSaving(true);
    setError(null);
    try {
      const wf = await api.updateWorkflow(tab.id, text);
      update(tab.id, { saved: text, version: wf.version, name: wf.name });
      setMessage(`Saved: version ${wf.version}.`);
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.errors.length) {
        setValidation({ valid: false, name: null, steps: [], inputs: {}, errors: e.errors });
        setMessage(`Not saved: ${e.message}. Fix the marked lines first.`);
      } else setError(e);
      return false;
    } finally {
      setSaving(false);
    }
  }, [tab.id, text, update]);

  const errors: ErrorItem[] = validation?.errors ?? [];
  const spec = useMemo(() => {
    try {
      const data = parse(text);
      return Array.isArray(data?.steps) ? (data as { steps: SpecStep[]; conversation?: boolean }) : null;
    } catch {
      return null;
    }
  }, [text]);
  const deps = useMemo(() => (spec ? dependencies(spec.steps.filter((s) => s && typeof s.id === "string"), spec.conversation) : new Map()), [spec]);

  return (
    <div className="editor">
      <div className="editor-bar">
        <div className="editor-title">
          <h1>{tab.name}</h1>
          <span className="meta">
            version {tab.version} · {unsaved ? <strong className="unsaved">unsaved changes</strong> : "all changes saved"}
          </span>
        </div>
        <div className="editor-actions">
          <button type="button" onClick={async () => {
            const v = await validate(text);
            if (v) setMessage(v.valid ? `Valid: ${v.steps.length} steps.` : `${v.errors.length} problem${v.errors.length === 1 ? "" : "s"} found.`);
          }}>
            Validate
          </button>
          <button type="button" onClick={save} disabled={saving || !unsaved}>
            {saving ? "Saving…" : "Save"}
          </button>
          <button
            type="button"
            className="primary"
            onClick={async () => {
              // Run what is on screen: save first.
              if (!unsaved || (await save())) navigate(href.runForm(tab.id));
            }}
          >
            Run
          </button>
          <button type="button" onClick={() => downloadBlob(new Blob([text], { type: "application/yaml" }), `${slug(tab.name)}.yaml`)}>
            Download
          </button>
        </div>
      </div>
      <ErrorBox error={error} onDismiss={() => setError(null)} />
      <div className="validation" role="status" aria-live="polite">
        {message ? (
          <span>{message}</span>
        ) : checking && !validation ? (
          <span className="muted">Checking…</span>
        ) : validation?.valid ? (
          <span className="ok">✓ Valid: {validation.steps.length} steps</span>
        ) : validation ? (
          <span className="bad">
            ✕ {errors.length} problem{errors.length === 1 ? "" : "s"}
          </span>
        ) : null}
      </div>
      {errors.length > 0 && (
        <ul className="problems" aria-label="Problems">
          {errors.map((e, i) => (
            <li key={i}>
              <button type="button" className="link" onClick={() => e.line && setFocus({ line: e.line, column: e.column ?? 1 })}>
                {e.line ? `Line ${e.line}${e.column ? `, column ${e.column}` : ""}` : "Workflow"}
              </button>{" "}
              <span>
                {e.path && <code>{e.path}</code>} {e.message}
              </span>
            </li>
          ))}
        </ul>
      )}
      <div className="editor-split">
        <div className="editor-code">
          {schema === undefined ? (
            <Spinner label="Loading the editor…" />
          ) : (
            <Suspense fallback={<Spinner label="Loading the editor…" />}>
              <CodeEditor value={text} onChange={setText} errors={errors} schema={schema} focus={focus} onSave={save} />
            </Suspense>
          )}
        </div>
        <div className="editor-side">
          <div className="segmented" role="group" aria-label="Side panel">
            <button type="button" aria-pressed={panel === "steps"} onClick={() => setPanel("steps")}>
              Steps
            </button>
            <button type="button" aria-pressed={panel === "graph"} onClick={() => setPanel("graph")}>
              Graph
            </button>
          </div>
          {panel === "steps" ? (
            <StepCards
              text={text}
              onChange={setText}
              onError={(m) => setError(new Error(m))}
              onShow={(i) => {
                const line = stepLine(text, i);
                if (line) setFocus({ line });
              }}
            />
          ) : spec ? (
            <Suspense fallback={<Spinner label="Drawing the graph…" />}>
              <Graph label="Workflow graph" steps={spec.steps.filter((s) => s && typeof s.id === "string").map((s) => ({ id: s.id, kind: specKind(s) }))} deps={deps} />
            </Suspense>
          ) : (
            <p className="muted">The graph appears when the YAML can be read.</p>
          )}
        </div>
      </div>
    </div>
  );
}

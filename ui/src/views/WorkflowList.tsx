import { useEffect, useRef, useState } from "react";
import { api, ApiError, downloadBlob } from "../lib/api";
import { when } from "../lib/format";
import { href, navigate } from "../lib/router";
import { useTabs } from "../lib/tabs";
import type { Template, Workflow, WorkflowSummary } from "../lib/types";
import { BLANK_WORKFLOW } from "../lib/yamlEdit";
import { Confirm, ErrorBox, Spinner } from "../components/ui";

const PAGE = 20;

export function WorkflowList() {
  const [items, setItems] = useState<WorkflowSummary[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [search, setSearch] = useState("");
  const [query, setQuery] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [deleting, setDeleting] = useState<WorkflowSummary | null>(null);
  const [showNew, setShowNew] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const { open, tabs, close } = useTabs();

  // Search as the user types, a moment after they stop.
  useEffect(() => {
    const t = setTimeout(() => setQuery(search.trim()), 250);
    return () => clearTimeout(t);
  }, [search]);

  useEffect(() => {
    let live = true;
    setItems(null);
    api
      .listWorkflows({ q: query, limit: PAGE })
      .then((page) => {
        if (!live) return;
        setItems(page.items);
        setCursor(page.next_cursor);
        if (!query && page.items.length === 0) setShowNew(true);
      })
      .catch((e) => live && setError(e));
    return () => {
      live = false;
    };
  }, [query]);

  const more = async () => {
    setBusy(true);
    try {
      const page = await api.listWorkflows({ q: query, cursor, limit: PAGE });
      setItems((old) => [...(old ?? []), ...page.items]);
      setCursor(page.next_cursor);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const openCreated = (wf: Workflow) => {
    open({ id: wf.id, name: wf.name, saved: wf.source ?? "", version: wf.version });
    navigate(href.edit(wf.id));
  };

  const create = async (source: string) => {
    setError(null);
    try {
      openCreated(await api.createWorkflow(source));
    } catch (e) {
      setError(e instanceof ApiError && e.errors.length ? new Error(`${e.message}: ${e.errors.map((x) => (x.line ? `line ${x.line}: ${x.message}` : x.message)).join("; ")}`) : e);
    }
  };

  const duplicate = async (summary: WorkflowSummary) => {
    setError(null);
    try {
      const wf = await api.getWorkflow(summary.id);
      const source = wf.source ?? "";
      // The copy gets its own name so the two are told apart in the list.
      const renamed = source.replace(/^name:\s*(.*)$/m, (_m, name: string) => {
        const bare = name.replace(/^["']|["']$/g, "");
        return `name: ${JSON.stringify(`${bare} (copy)`)}`;
      });
      const copy = await api.createWorkflow(renamed === source ? source : renamed);
      setItems((old) => [copy, ...(old ?? [])]);
      setNotice(`Created “${copy.name}”.`);
    } catch (e) {
      setError(e);
    }
  };

  const download = async (summary: WorkflowSummary) => {
    try {
      const wf = await api.getWorkflow(summary.id);
      downloadBlob(new Blob([wf.source ?? ""], { type: "application/yaml" }), `${slug(wf.name)}.yaml`);
    } catch (e) {
      setError(e);
    }
  };

  const remove = async () => {
    const target = deleting;
    setDeleting(null);
    if (!target) return;
    try {
      await api.deleteWorkflow(target.id);
      setItems((old) => (old ?? []).filter((w) => w.id !== target.id));
      if (tabs.some((t) => t.id === target.id)) close(target.id);
      setNotice(`Deleted “${target.name}”. Its runs are kept.`);
    } catch (e) {
      setError(e);
    }
  };

  return (
    <section className="page">
      <div className="page-head">
        <div>
          <h1>Workflows</h1>
          <p className="muted">Each workflow is a list of prompts; later steps use earlier answers. Pick one to edit or run.</p>
        </div>
        <button
          type="button"
          className="primary"
          aria-expanded={showNew}
          onClick={() => {
            setShowNew(true);
            setTimeout(() => document.getElementById("new-wf-title")?.focus(), 0);
          }}
        >
          New workflow
        </button>
      </div>
      {showNew && <NewWorkflow onCreate={create} onError={setError} onClose={() => setShowNew(false)} />}
      <ErrorBox error={error} onDismiss={() => setError(null)} />
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      <div className="toolbar">
        <label htmlFor="wf-search" className="visually-hidden">
          Search workflows
        </label>
        <input id="wf-search" type="search" placeholder="Search workflows by name" value={search} onChange={(e) => setSearch(e.target.value)} />
      </div>
      {items === null ? (
        <Spinner label="Loading workflows…" />
      ) : items.length === 0 ? (
        <p className="empty">{query ? `No workflow matches “${query}”.` : "No workflows yet: start from an example above."}</p>
      ) : (
        <ul className="wf-list" aria-label="Workflows">
          {items.map((wf) => (
            <li key={wf.id} className="wf-row card">
              <div className="wf-main">
                <a href={href.edit(wf.id)} className="wf-name">
                  {wf.name}
                </a>
                <p className="muted">{wf.description || "No description"}</p>
                <p className="meta">
                  version {wf.version} · updated {when(wf.updated_at)}
                </p>
              </div>
              <div className="wf-actions" role="group" aria-label={`Actions for ${wf.name}`}>
                <a className="button primary" href={href.runForm(wf.id)}>
                  Run
                </a>
                <a className="button" href={href.edit(wf.id)}>
                  Edit
                </a>
                <a className="button" href={href.history(wf.id)}>
                  Runs
                </a>
                <button type="button" onClick={() => duplicate(wf)}>
                  Duplicate
                </button>
                <button type="button" onClick={() => download(wf)}>
                  Download
                </button>
                <button type="button" className="danger-text" onClick={() => setDeleting(wf)}>
                  Delete
                </button>
              </div>
            </li>
          ))}
        </ul>
      )}
      {cursor && (
        <button type="button" onClick={more} disabled={busy}>
          {busy ? "Loading…" : "Load more"}
        </button>
      )}
      <Confirm
        open={deleting !== null}
        title={`Delete “${deleting?.name ?? ""}”?`}
        confirmLabel="Delete"
        danger
        onConfirm={remove}
        onCancel={() => setDeleting(null)}
      >
        <p>The workflow is removed. Runs it already made are kept in the history.</p>
      </Confirm>
    </section>
  );
}

export function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_|_$/g, "") || "workflow";
}

function NewWorkflow(props: { onCreate: (source: string) => void; onError: (e: unknown) => void; onClose: () => void }) {
  const [templates, setTemplates] = useState<Template[] | null>(null);
  const file = useRef<HTMLInputElement>(null);
  useEffect(() => {
    api
      .templates()
      .then((t) => setTemplates(t.items))
      .catch((e) => {
        setTemplates([]);
        props.onError(e);
      });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return (
    <div className="new-wf card" aria-labelledby="new-wf-title">
      <div className="section-head">
        <h2 id="new-wf-title" tabIndex={-1}>
          Start from an example
        </h2>
        <button type="button" className="small" onClick={props.onClose}>
          Close
        </button>
      </div>
      {templates === null ? (
        <Spinner label="Loading examples…" />
      ) : (
        <ul className="gallery" aria-label="Examples">
          {templates.map((t) => (
            <li key={t.id} className="template">
              <h3 id={`tpl-${t.id}`}>{t.name}</h3>
              <p className="muted">{t.description}</p>
              <p className="meta">{countSteps(t.source)} steps</p>
              <button type="button" className="primary" onClick={() => props.onCreate(t.source)} aria-describedby={`tpl-${t.id}`}>
                Use this example
              </button>
            </li>
          ))}
        </ul>
      )}
      <div className="new-other">
        <span className="muted">Or:</span>
        <button type="button" onClick={() => props.onCreate(BLANK_WORKFLOW)}>
          Blank workflow
        </button>
        <button type="button" onClick={() => file.current?.click()}>
          Upload YAML
        </button>
        <input
          ref={file}
          type="file"
          accept=".yaml,.yml,application/yaml,text/yaml"
          className="visually-hidden"
          aria-label="YAML file to upload"
          tabIndex={-1}
          onChange={async (e) => {
            const f = e.target.files?.[0];
            e.target.value = "";
            if (f) props.onCreate(await f.text());
          }}
        />
      </div>
    </div>
  );
}

function countSteps(source: string): number {
  return (source.match(/^\s*- id:/gm) ?? []).length;
}

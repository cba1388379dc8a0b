// The /v1 client: every call carries the session's bearer token; an error answer becomes
// an ApiError with the problem's `detail`; a 401 anywhere signs the user out (the caller's
// unsaved editor text lives in the drafts store, so nothing is lost).
import { accessToken, currentSession } from "./auth";
import type {
  Page,
  Run,
  RunEvent,
  RunSummary,
  StoredExport,
  Template,
  Validation,
  Workflow,
  WorkflowSummary,
  ErrorItem,
} from "./types";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = "error",
    readonly errors: ErrorItem[] = [],
  ) {
    super(message);
  }
}

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();

/** Called whenever the server rejects the token. */
export function onUnauthorized(listener: Listener): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

export function authHeaders(): Record<string, string> {
  const session = currentSession();
  return session ? { Authorization: `Bearer ${session.token}` } : {};
}

/** The headers with the freshest token (Supabase Auth refreshes it when due). */
export async function freshAuthHeaders(): Promise<Record<string, string>> {
  const token = await accessToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export async function problemOf(response: Response): Promise<ApiError> {
  let detail = `${response.status} ${response.statusText}`.trim();
  let type = "error";
  let errors: ErrorItem[] = [];
  try {
    const body = await response.json();
    if (typeof body.detail === "string") detail = body.detail;
    if (typeof body.type === "string") type = body.type;
    if (Array.isArray(body.errors)) errors = body.errors;
  } catch {
    /* not problem+json */
  }
  return new ApiError(response.status, detail, type, errors);
}

export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  for (const [k, v] of Object.entries(await freshAuthHeaders())) headers.set(k, v);
  if (!headers.has("Accept")) headers.set("Accept", "application/json");
  let response: Response;
  try {
    response = await fetch(path, { ...init, headers });
  } catch {
    throw new ApiError(0, "the server could not be reached", "network");
  }
  if (response.status === 401) {
    unauthorizedListeners.forEach((l) => l());
    throw await problemOf(response);
  }
  if (!response.ok) throw await problemOf(response);
  return response;
}

async function json<T>(path: string, init: RequestInit = {}): Promise<T> {
  const response = await request(path, init);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

const yamlBody = (source: string): RequestInit => ({
  body: source,
  headers: { "Content-Type": "application/yaml" },
});

function query(params: Record<string, string | number | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

export const api = {
  listWorkflows: (p: { q?: string; cursor?: string | null; limit?: number }) =>
    json<Page<WorkflowSummary>>(`/v1/workflows${query({ q: p.q, cursor: p.cursor, limit: p.limit ?? 20 })}`),
  getWorkflow: (id: string) => json<Workflow>(`/v1/workflows/${id}`),
  createWorkflow: (source: string) => json<Workflow>("/v1/workflows", { method: "POST", ...yamlBody(source) }),
  updateWorkflow: (id: string, source: string) => json<Workflow>(`/v1/workflows/${id}`, { method: "PUT", ...yamlBody(source) }),
  deleteWorkflow: (id: string) => json<void>(`/v1/workflows/${id}`, { method: "DELETE" }),
  validate: (source: string) => json<Validation>("/v1/workflows/validate", { method: "POST", ...yamlBody(source) }),
  templates: () => json<{ items: Template[] }>("/v1/templates"),
  schema: () => json<Record<string, unknown>>("/v1/schema"),
  startRun: (workflowId: string, body: { inputs: Record<string, unknown>; mode: "auto" | "step"; webhook_url?: string | null }) =>
    json<Run>(`/v1/workflows/${workflowId}/runs`, {
      method: "POST",
      body: JSON.stringify(body),
      headers: { "Content-Type": "application/json" },
    }),
  listRuns: (p: { workflow_id?: string; status?: string; cursor?: string | null; limit?: number }) =>
    json<Page<RunSummary>>(`/v1/runs${query({ workflow_id: p.workflow_id, status: p.status, cursor: p.cursor, limit: p.limit ?? 20 })}`),
  getRun: (id: string) => json<Run>(`/v1/runs/${id}`),
  /** The events after a seq, at once (no waiting). */
  events: (id: string, after: number) => json<{ events: RunEvent[]; finished: boolean }>(`/v1/runs/${id}/events${query({ after })}`),
  control: (id: string, action: "pause" | "resume" | "step" | "cancel" | "retry") =>
    json<Run>(`/v1/runs/${id}/${action}`, { method: "POST" }),
  exportRun: async (id: string, format: "json" | "md"): Promise<Blob> => {
    const response = await request(`/v1/runs/${id}/export${query({ format })}`, {
      headers: { Accept: format === "md" ? "text/markdown" : "application/json" },
    });
    return response.blob();
  },
  /** Save the export in Supabase Storage; answers a time-limited download URL. */
  storeExport: (id: string, format: "json" | "md") =>
    json<StoredExport>(`/v1/runs/${id}/export`, {
      method: "POST",
      body: JSON.stringify({ format, store: true }),
      headers: { "Content-Type": "application/json" },
    }),
};

/** Save a blob as a file through a temporary link (no token in any URL). */
export function downloadBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

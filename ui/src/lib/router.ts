// Hash routes (#/workflows, #/runs/<id>, ...): the server only serves `/` and `/assets`.
import { useEffect, useState } from "react";

export interface Route {
  parts: string[];
  params: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#\/?/, "");
  const [path, search = ""] = raw.split("?", 2);
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(search) };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(window.location.hash));
  useEffect(() => {
    const update = () => setRoute(parseHash(window.location.hash));
    window.addEventListener("hashchange", update);
    return () => window.removeEventListener("hashchange", update);
  }, []);
  return route;
}

export function navigate(hash: string, replace = false): void {
  const target = hash.startsWith("#") ? hash : `#${hash}`;
  if (replace) {
    history.replaceState(null, "", target);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else window.location.hash = target;
}

export const href = {
  workflows: () => "#/workflows",
  edit: (id: string) => `#/edit/${id}`,
  runForm: (id: string) => `#/workflows/${id}/run`,
  run: (id: string, step?: string) => `#/runs/${id}${step ? `?step=${encodeURIComponent(step)}` : ""}`,
  history: (workflowId?: string, status?: string) => {
    const q = new URLSearchParams();
    if (workflowId) q.set("workflow", workflowId);
    if (status) q.set("status", status);
    const s = q.toString();
    return `#/runs${s ? `?${s}` : ""}`;
  },
  compare: (a: string, b: string) => `#/compare?a=${a}&b=${b}`,
};

// Open editor tabs and their unsaved text. Kept in sessionStorage, so a sign-in prompt
// (after a 401) or a reload never loses what was typed.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";

export interface Tab {
  id: string;
  name: string;
  text: string;
  saved: string;
  version: number;
}

const KEY = "orchestrate.tabs";

function load(): Tab[] {
  try {
    const tabs = JSON.parse(sessionStorage.getItem(KEY) ?? "[]");
    return Array.isArray(tabs) ? tabs : [];
  } catch {
    return [];
  }
}

interface TabsApi {
  tabs: Tab[];
  open: (tab: Omit<Tab, "text"> & { text?: string }) => void;
  update: (id: string, patch: Partial<Tab>) => void;
  close: (id: string) => void;
  dirty: (id: string) => boolean;
}

const TabsContext = createContext<TabsApi | null>(null);

export function TabsProvider({ children }: { children: ReactNode }) {
  const [tabs, setTabs] = useState<Tab[]>(load);
  useEffect(() => sessionStorage.setItem(KEY, JSON.stringify(tabs)), [tabs]);
  useEffect(() => {
    const warn = (e: BeforeUnloadEvent) => {
      if (tabs.some((t) => t.text !== t.saved)) e.preventDefault();
    };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [tabs]);
  const open = useCallback<TabsApi["open"]>((tab) => {
    setTabs((old) => (old.some((t) => t.id === tab.id) ? old : [...old, { ...tab, text: tab.text ?? tab.saved }]));
  }, []);
  const update = useCallback<TabsApi["update"]>((id, patch) => {
    setTabs((old) => old.map((t) => (t.id === id ? { ...t, ...patch } : t)));
  }, []);
  const close = useCallback((id: string) => setTabs((old) => old.filter((t) => t.id !== id)), []);
  const api = useMemo<TabsApi>(
    () => ({ tabs, open, update, close, dirty: (id) => tabs.some((t) => t.id === id && t.text !== t.saved) }),
    [tabs, open, update, close],
  );
  return <TabsContext.Provider value={api}>{children}</TabsContext.Provider>;
}

export function useTabs(): TabsApi {
  const api = useContext(TabsContext);
  if (!api) throw new Error("useTabs outside TabsProvider");
  return api;
}

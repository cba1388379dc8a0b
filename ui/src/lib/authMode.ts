// Which sign-in the Studio offers, decided by GET /v1/config: the local one-time link,
// or Supabase Auth, whose client (supabase-js) is then loaded on demand.
import { useEffect, useState } from "react";
import { currentSession, tokenSourceBooting, type Session } from "./auth";
import { loadConfig, usesSupabase, type PublicConfig } from "./config";
import type { OpenChannel } from "./live";

export type SupabaseModule = typeof import("./supabase");

export interface AuthMode {
  config: PublicConfig | null;
  /** Loaded for a Supabase project only. */
  supabase: SupabaseModule | null;
  /** What a magic link brought back instead of a session (expired, used). */
  linkError: string | null;
}

let boot: Promise<{ config: PublicConfig; supabase: SupabaseModule | null; session: Session | null; error: string | null }> | null = null;

function booted() {
  boot ??= loadConfig().then(async (config) => {
    if (!usesSupabase(config)) return { config, supabase: null, session: null, error: null };
    const supabase = await import("./supabase");
    const { session, error } = await supabase.start(config.supabase);
    return { config, supabase, session, error };
  });
  return boot;
}

/** The auth mode, and every session change Supabase Auth reports (a link's return, a
 * refresh that failed for good, a sign-out in another place). */
export function useAuthMode(onSession: (session: Session | null) => void): AuthMode {
  const [mode, setMode] = useState<AuthMode>({ config: null, supabase: null, linkError: null });
  useEffect(() => {
    let live = true;
    let off: (() => void) | null = null;
    const ready = booted();
    tokenSourceBooting(ready);
    ready
      .then(({ config, supabase, session, error }) => {
        if (!live) return;
        setMode({ config, supabase, linkError: error });
        if (supabase) {
          if (session) onSession(session);
          off = supabase.onSession(onSession);
        }
      })
      .catch((e: unknown) => live && setMode((m) => ({ ...m, linkError: e instanceof Error ? e.message : String(e) })));
    return () => {
      live = false;
      off?.();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return mode;
}

export interface LiveSource {
  open: (runId: string) => OpenChannel;
}

/** Realtime for run views: `undefined` while the mode is being learnt, `null` without
 * (no project, no broadcasting database, or not signed in through Supabase Auth). */
export function useLive(): LiveSource | null | undefined {
  const [live, setLive] = useState<LiveSource | null | undefined>(undefined);
  useEffect(() => {
    let on = true;
    booted()
      .then(({ config, supabase }) => {
        if (!on) return;
        const project = usesSupabase(config) && config.realtime && supabase && currentSession()?.issuer === "supabase" ? config.supabase : null;
        setLive(project && supabase ? { open: (runId) => supabase.runChannel(project, runId) } : null);
      })
      .catch(() => on && setLive(null));
    return () => {
      on = false;
    };
  }, []);
  return live;
}

/** The server's public configuration, once known. */
export function useConfig(): PublicConfig | null {
  const [config, setConfig] = useState<PublicConfig | null>(null);
  useEffect(() => {
    let on = true;
    void loadConfig().then((c) => on && setConfig(c));
    return () => {
      on = false;
    };
  }, []);
  return config;
}

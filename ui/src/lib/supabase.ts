// Supabase Auth and Realtime through supabase-js, for a server configured for a Supabase
// project (GET /v1/config). Imported dynamically: the local mode never loads it.
//
// The session lives in this tab's sessionStorage, like the local sign-in's token.
// supabase-js refreshes it before it expires (autoRefreshToken) and picks up the session
// a magic link returns in the URL fragment (detectSessionInUrl). Every /v1 call asks it
// for the current access token; Realtime gets the same token (setAuth) and supabase-js
// pushes each refreshed one on the open channels.
import { createClient, type AuthChangeEvent, type Session as SupabaseSession, type SupabaseClient } from "@supabase/supabase-js";
import { forgetSession, saveSession, setTokenSource, type Session } from "./auth";
import type { ChannelStatus, OpenChannel } from "./live";
import type { RunEvent } from "./types";

export interface Project {
  url: string;
  publishable_key: string;
}

let client: SupabaseClient | null = null;
const listeners = new Set<(session: Session | null) => void>();

function toSession(s: SupabaseSession): Session {
  return { token: s.access_token, email: s.user?.email ?? null, issuer: "supabase" };
}

/** The project's client (one per page), installed as the source of access tokens. */
export function connect(project: Project): SupabaseClient {
  if (client) return client;
  const made = createClient(project.url, project.publishable_key, {
    auth: {
      storage: window.sessionStorage,
      storageKey: "orchestrate.supabase",
      persistSession: true,
      autoRefreshToken: true,
      detectSessionInUrl: true,
      flowType: "implicit", // a magic link opened in another tab still signs in there
    },
  });
  made.auth.onAuthStateChange((event: AuthChangeEvent, session: SupabaseSession | null) => {
    // Keep the tab's session (what the rest of the Studio reads) in step with supabase-js.
    if (session) saveSession(toSession(session));
    else if (event === "SIGNED_OUT") forgetSession();
    if (event === "SIGNED_IN" || event === "SIGNED_OUT" || event === "INITIAL_SESSION") {
      listeners.forEach((l) => l(session ? toSession(session) : null));
    }
  });
  setTokenSource({
    token: async () => (await made.auth.getSession()).data.session?.access_token ?? null,
    signOut: async () => {
      await made.removeAllChannels();
      const { error } = await made.auth.signOut({ scope: "local" });
      if (error) throw error;
    },
  });
  client = made;
  return made;
}

/** Sessions as supabase-js sees them (sign-in, a magic link's return, sign-out). */
export function onSession(listener: (session: Session | null) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Wait for supabase-js to read the stored session or the one a magic link returned;
 * the error a failed link brought back, if any. */
export async function start(project: Project): Promise<{ session: Session | null; error: string | null }> {
  const auth = connect(project).auth;
  const { error } = await auth.initialize();
  const { data } = await auth.getSession();
  return { session: data.session ? toSession(data.session) : null, error: error ? error.message : null };
}

export async function signInWithPassword(project: Project, email: string, password: string): Promise<Session> {
  const { data, error } = await connect(project).auth.signInWithPassword({ email, password });
  if (error || !data.session) throw new Error(error?.message ?? "no session came back");
  return toSession(data.session);
}

/** Mail a sign-in link that returns to this page (an allowed redirect URL of the project). */
export async function sendMagicLink(project: Project, email: string): Promise<void> {
  const back = `${window.location.origin}${window.location.pathname}`;
  const { error } = await connect(project).auth.signInWithOtp({ email, options: { emailRedirectTo: back, shouldCreateUser: false } });
  if (error) throw new Error(error.message);
}

/** The run's private channel, as `followLive` opens it. */
export function runChannel(project: Project, runId: string): OpenChannel {
  return ({ onEvent, onStatus }) => {
    const supabase = connect(project);
    let channel: ReturnType<SupabaseClient["channel"]> | null = null;
    let left = false;
    void (async () => {
      // Private channels join with the user's token (Realtime Authorization).
      const { data } = await supabase.auth.getSession();
      if (data.session) await supabase.realtime.setAuth(data.session.access_token);
      if (left) return;
      channel = supabase
        .channel(`run:${runId}`, { config: { private: true } })
        .on("broadcast", { event: "*" }, (message: { payload?: unknown }) => onEvent(message.payload as RunEvent))
        .subscribe((status: `${ChannelStatus}`, err?: Error) => onStatus(status, err?.message));
    })().catch((e: unknown) => onStatus("CHANNEL_ERROR", e instanceof Error ? e.message : String(e)));
    return () => {
      left = true;
      if (channel) void supabase.removeChannel(channel);
    };
  };
}

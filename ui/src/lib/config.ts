// What the server says about itself before anyone signs in (GET /v1/config, public):
// how to sign in, the Supabase project's URL and publishable key, whether run progress
// is pushed through Realtime and whether exports can be stored. Asked once per page.

export interface PublicConfig {
  auth_mode: "local" | "supabase";
  supabase: { url: string; publishable_key: string } | null;
  realtime: boolean;
  stored_exports: boolean;
}

const LOCAL: PublicConfig = { auth_mode: "local", supabase: null, realtime: false, stored_exports: false };

let cached: Promise<PublicConfig> | null = null;

/** The server's public configuration; a server that cannot say is taken as local. */
export function loadConfig(fetchImpl: typeof fetch = fetch.bind(globalThis)): Promise<PublicConfig> {
  cached ??= fetchImpl("/v1/config", { headers: { Accept: "application/json" } })
    .then(async (response) => (response.ok ? { ...LOCAL, ...((await response.json()) as Partial<PublicConfig>) } : LOCAL))
    .catch(() => {
      cached = null; // asked again next time: the server may be back
      return LOCAL;
    });
  return cached;
}

/** Supabase Auth signs users in: a project is named and the server says so. */
export function usesSupabase(config: PublicConfig): config is PublicConfig & { supabase: { url: string; publishable_key: string } } {
  return config.auth_mode === "supabase" && config.supabase !== null;
}

/** Forget the cached answer (tests). */
export function resetConfig(): void {
  cached = null;
}

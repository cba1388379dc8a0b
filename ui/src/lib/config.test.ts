import { afterEach, describe, expect, it } from "vitest";
import { loadConfig, resetConfig, usesSupabase } from "./config";

afterEach(resetConfig);

const answer = (body: unknown, status = 200) => (async () => new Response(JSON.stringify(body), { status })) as unknown as typeof fetch;

describe("the server's public configuration", () => {
  it("is asked once and says which sign-in to offer", async () => {
    let asked = 0;
    const body = { auth_mode: "supabase", supabase: { url: "https://p.supabase.co", publishable_key: "sb_publishable_x" }, realtime: true, stored_exports: true };
    const fetchImpl = (async () => (asked++, new Response(JSON.stringify(body)))) as unknown as typeof fetch;
    const config = await loadConfig(fetchImpl);
    await loadConfig(fetchImpl);
    expect(asked).toBe(1);
    expect(usesSupabase(config)).toBe(true);
    expect(config.stored_exports).toBe(true);
  });

  it("a Supabase mode without a project is not Supabase sign-in", async () => {
    const config = await loadConfig(answer({ auth_mode: "supabase", supabase: null, realtime: false, stored_exports: false }));
    expect(usesSupabase(config)).toBe(false);
  });

  it("an older server or an error answer means the local sign-in", async () => {
    expect(await loadConfig(answer({ detail: "not found" }, 404))).toEqual({ auth_mode: "local", supabase: null, realtime: false, stored_exports: false });
  });
});

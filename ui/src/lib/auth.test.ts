import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { accessToken, currentSession, saveSession, setTokenSource, signOut, tokenSourceBooting } from "./auth";

// The browser's sessionStorage, for node.
beforeEach(() => {
  const items = new Map<string, string>();
  (globalThis as { sessionStorage?: unknown }).sessionStorage = {
    getItem: (k: string) => items.get(k) ?? null,
    setItem: (k: string, v: string) => void items.set(k, v),
    removeItem: (k: string) => void items.delete(k),
  };
});
afterEach(() => setTokenSource(null));

describe("the access token of the next call", () => {
  it("is the stored one for a local sign-in", async () => {
    saveSession({ token: "local", email: "a@b.c" });
    expect(await accessToken()).toBe("local");
  });

  it("comes fresh from Supabase Auth once it is there, and waits for it while it loads", async () => {
    saveSession({ token: "stale", email: null, issuer: "supabase" });
    let ready!: () => void;
    const loading = new Promise<void>((r) => (ready = r));
    tokenSourceBooting(loading);
    const token = accessToken();
    setTokenSource({ token: async () => "fresh", signOut: async () => undefined });
    ready();
    expect(await token).toBe("fresh");
  });

  it("signing out forgets the session here and ends it at the issuer", async () => {
    let ended = 0;
    saveSession({ token: "t", email: null, issuer: "supabase" });
    setTokenSource({ token: async () => "t", signOut: async () => void ended++ });
    await signOut();
    expect(currentSession()).toBeNull();
    expect(ended).toBe(1);
  });
});

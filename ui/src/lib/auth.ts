// Who is signed in. The token lives in this tab's sessionStorage only: closing the tab or
// signing out forgets it. Sign-in methods are small providers: the local one-time link and
// the pasted token here, Supabase Auth in ./supabase (loaded only for a Supabase project),
// which installs itself as the source of fresh access tokens.

const TOKEN_KEY = "orchestrate.token";
const USER_KEY = "orchestrate.user";
const ISSUER_KEY = "orchestrate.issuer";

export interface Session {
  token: string;
  email: string | null;
  /** Who refreshes the token: Supabase Auth, or nobody (a local link or a pasted token). */
  issuer?: "supabase";
}

export function currentSession(): Session | null {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return null;
  const issuer = sessionStorage.getItem(ISSUER_KEY) === "supabase" ? "supabase" : undefined;
  return { token, email: sessionStorage.getItem(USER_KEY), issuer };
}

export function saveSession(session: Session): void {
  sessionStorage.setItem(TOKEN_KEY, session.token);
  if (session.email) sessionStorage.setItem(USER_KEY, session.email);
  else sessionStorage.removeItem(USER_KEY);
  if (session.issuer) sessionStorage.setItem(ISSUER_KEY, session.issuer);
  else sessionStorage.removeItem(ISSUER_KEY);
}

export function forgetSession(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
  sessionStorage.removeItem(ISSUER_KEY);
}

/** A sign-in that refreshes its own tokens (Supabase Auth). */
export interface TokenSource {
  /** The current access token, refreshed first if it is about to expire. */
  token(): Promise<string | null>;
  /** End the session at its issuer too. */
  signOut(): Promise<void>;
}

let source: TokenSource | null = null;
let booting: Promise<unknown> | null = null;

export function setTokenSource(next: TokenSource | null): void {
  source = next;
}

/** The token source is on its way (supabase-js loading): a Supabase session's calls wait
 * for it rather than send a token that may have expired while the tab slept. */
export function tokenSourceBooting(ready: Promise<unknown>): void {
  booting = ready.catch(() => undefined);
}

/** The access token for the next /v1 call. */
export async function accessToken(): Promise<string | null> {
  if (!source && booting && currentSession()?.issuer === "supabase") await booting;
  if (source) {
    try {
      const token = await source.token();
      if (token) return token;
    } catch {
      /* the issuer is unreachable: the stored token may still be good */
    }
  }
  return currentSession()?.token ?? null;
}

/** Sign out here and, for Supabase Auth, at the project (its refresh token stops working). */
export async function signOut(): Promise<void> {
  const ending = source;
  forgetSession();
  if (ending) await ending.signOut().catch(() => undefined);
}

/** The email a JWT names, if it is readable (display only: the server verifies tokens). */
export function emailFromToken(token: string): string | null {
  try {
    const part = token.split(".")[1];
    const json = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/")));
    return typeof json.email === "string" ? json.email : null;
  } catch {
    return null;
  }
}

export interface LinkAnswer {
  access_token: string;
  user?: { id?: string; email?: string | null };
}

/** Exchange a one-time sign-in code (from the URL fragment) for a token. */
export async function signInWithCode(code: string): Promise<Session> {
  const response = await fetch("/v1/auth/link", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ code }),
  });
  if (!response.ok) {
    let detail = `sign-in failed (${response.status})`;
    try {
      const problem = await response.json();
      if (typeof problem.detail === "string") detail = problem.detail;
    } catch {
      /* not JSON: keep the status */
    }
    throw new Error(detail);
  }
  const answer = (await response.json()) as LinkAnswer;
  return { token: answer.access_token, email: answer.user?.email ?? emailFromToken(answer.access_token) };
}

/** Check a pasted token by making one authenticated call with it. */
export async function signInWithToken(raw: string): Promise<Session> {
  const token = raw.trim().replace(/^Bearer\s+/i, "");
  if (!token) throw new Error("paste an access token first");
  const response = await fetch("/v1/workflows?limit=1", { headers: { Authorization: `Bearer ${token}` } });
  if (response.status === 401) throw new Error("the server did not accept this token (expired or signed with another secret)");
  if (!response.ok) throw new Error(`the server answered ${response.status}`);
  return { token, email: emailFromToken(token) };
}

import { useEffect, useRef, useState, type ReactNode } from "react";
import { saveSession, signInWithCode, signInWithToken, type Session } from "../lib/auth";
import type { AuthMode } from "../lib/authMode";
import { usesSupabase } from "../lib/config";
import { ErrorBox, Spinner } from "../components/ui";

export function SignIn(props: { code: string | null; expired: boolean; onSignedIn: (s: Session) => void; mode: AuthMode }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [token, setToken] = useState("");
  const tried = useRef<string | null>(null);

  const finish = (session: Session) => {
    saveSession(session);
    props.onSignedIn(session);
  };

  useEffect(() => {
    const code = props.code;
    if (!code || tried.current === code) return;
    tried.current = code;
    // The code is single-use: take it out of the address bar at once.
    history.replaceState(null, "", "#/signin");
    setBusy(true);
    signInWithCode(code)
      .then(finish)
      .catch((e: Error) => setError(e.message))
      .finally(() => setBusy(false));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.code]);

  return (
    <section className="page signin">
      <div className="card signin-card">
        <h1>Sign in to the Studio</h1>
        {props.expired && (
          <p className="notice" role="status">
            Your session ended. Sign in again: your unsaved changes are kept.
          </p>
        )}
        {busy || !props.mode.config ? (
          <Spinner label={busy ? "Signing in…" : "Loading…"} />
        ) : (
          <>
            {usesSupabase(props.mode.config) && props.mode.supabase ? (
              <SupabaseSignIn mode={props.mode} project={props.mode.config.supabase} onSignedIn={finish} />
            ) : props.mode.config.auth_mode === "supabase" ? (
              <p>
                This server signs users in with Supabase Auth, but names no publishable key (<code>SUPABASE_PUBLISHABLE_KEY</code>): paste a Supabase access token below.
              </p>
            ) : (
              <p>
                Open the sign-in link that <code>orchestrate serve</code> printed in its terminal, or get a new one with{" "}
                <code>orchestrate token --link</code>.
              </p>
            )}
            <ErrorBox error={error} />
            <TokenFormFrame folded={usesSupabase(props.mode.config) && props.mode.supabase !== null}>
              <form
                onSubmit={async (e) => {
                  e.preventDefault();
                  setError(null);
                  setBusy(true);
                  try {
                    finish(await signInWithToken(token));
                  } catch (err) {
                    setError(err instanceof Error ? err.message : String(err));
                  } finally {
                    setBusy(false);
                  }
                }}
              >
                <label htmlFor="token">Or paste an access token</label>
                <textarea
                  id="token"
                  rows={3}
                  value={token}
                  onChange={(e) => setToken(e.target.value)}
                  placeholder="eyJhbGciOi… (from `orchestrate token`)"
                  spellCheck={false}
                  autoComplete="off"
                />
                <button type="submit" className={usesSupabase(props.mode.config) ? "" : "primary"}>
                  {usesSupabase(props.mode.config) ? "Sign in with the token" : "Sign in"}
                </button>
              </form>
            </TokenFormFrame>
          </>
        )}
      </div>
    </section>
  );
}

/** Beside Supabase sign-in, the pasted token is the exception: folded away. */
function TokenFormFrame(props: { folded: boolean; children: ReactNode }) {
  if (!props.folded) return <>{props.children}</>;
  return (
    <details className="signin-token">
      <summary>Use an access token instead</summary>
      {props.children}
    </details>
  );
}

/** Email and password, or a magic link, through supabase-js. */
function SupabaseSignIn(props: { mode: AuthMode; project: { url: string; publishable_key: string }; onSignedIn: (s: Session) => void }) {
  const supabase = props.mode.supabase!;
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(props.mode.linkError ? `The sign-in link did not work: ${props.mode.linkError}` : null);
  const [sent, setSent] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const attempt = async (what: () => Promise<void>) => {
    setError(null);
    setSent(null);
    setBusy(true);
    try {
      await what();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <p>Sign in with your account of this Supabase project.</p>
      <form
        aria-label="Sign in with Supabase"
        onSubmit={(e) => {
          e.preventDefault();
          void attempt(async () => props.onSignedIn(await supabase.signInWithPassword(props.project, email.trim(), password)));
        }}
      >
        <label htmlFor="email">Email</label>
        <input id="email" type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
        <label htmlFor="password">Password</label>
        <input id="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
        <div className="signin-actions">
          <button type="submit" className="primary" disabled={busy || !password}>
            Sign in
          </button>
          <button
            type="button"
            disabled={busy || !email.trim()}
            onClick={() =>
              void attempt(async () => {
                await supabase.sendMagicLink(props.project, email.trim());
                setSent(email.trim());
              })
            }
          >
            Email me a sign-in link
          </button>
        </div>
      </form>
      {sent && (
        <p className="notice" role="status">
          A sign-in link is on its way to {sent}. Open it in this browser.
        </p>
      )}
      <ErrorBox error={error} onDismiss={() => setError(null)} />
    </>
  );
}

import { useEffect, useRef, useState } from "react";
import { saveSession, signInWithCode, signInWithToken, type Session } from "../lib/auth";
import { ErrorBox, Spinner } from "../components/ui";

export function SignIn(props: { code: string | null; expired: boolean; onSignedIn: (s: Session) => void }) {
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
        {busy ? (
          <Spinner label="Signing in…" />
        ) : (
          <>
            <p>
              Open the sign-in link that <code>orchestrate serve</code> printed in its terminal, or get a new one with{" "}
              <code>orchestrate token --link</code>.
            </p>
            <ErrorBox error={error} />
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
              <button type="submit" className="primary">
                Sign in
              </button>
            </form>
          </>
        )}
      </div>
    </section>
  );
}

import { lazy, Suspense, useEffect, useRef, useState } from "react";
import { onUnauthorized } from "./lib/api";
import { currentSession, signOut, type Session } from "./lib/auth";
import { useAuthMode } from "./lib/authMode";
import { href, navigate, useRoute } from "./lib/router";
import { TabsProvider, useTabs } from "./lib/tabs";
import { Spinner } from "./components/ui";
import { SignIn } from "./views/SignIn";
import { WorkflowList } from "./views/WorkflowList";
import { History } from "./views/History";

// The heavy views load on demand: the editor (CodeMirror) and the run view (the graph).
const EditorView = lazy(() => import("./views/EditorView"));
const RunForm = lazy(() => import("./views/RunForm"));
const RunView = lazy(() => import("./views/RunView"));
const Compare = lazy(() => import("./views/Compare"));

const RETURN_KEY = "orchestrate.returnTo";

export function App() {
  return (
    <TabsProvider>
      <Shell />
    </TabsProvider>
  );
}

function Shell() {
  const route = useRoute();
  const [session, setSession] = useState<Session | null>(currentSession);
  const [expired, setExpired] = useState(false);
  const { tabs } = useTabs();

  useEffect(
    () =>
      onUnauthorized(() => {
        // Keep where the user was; their editor text is in the tabs store.
        const here = window.location.hash;
        if (!here.startsWith("#/signin")) sessionStorage.setItem(RETURN_KEY, here);
        void signOut();
        setSession(null);
        setExpired(true);
      }),
    [],
  );

  const signedIn = (s: Session) => {
    setSession(s);
    setExpired(false);
    const back = sessionStorage.getItem(RETURN_KEY);
    sessionStorage.removeItem(RETURN_KEY);
    navigate(back && !back.startsWith("#/signin") ? back : href.workflows(), true);
  };

  const [top] = route.parts;
  const view = !session || top === "signin" ? "signin" : top ?? "workflows";
  const onSignIn = useRef(view === "signin");
  onSignIn.current = view === "signin";
  // Supabase Auth's own news: a magic link's session, a refresh that failed for good.
  const mode = useAuthMode((s) => {
    if (!s) setSession((old) => (old?.issuer === "supabase" ? null : old));
    else if (onSignIn.current) signedIn(s);
    else setSession(s);
  });
  useEffect(() => {
    if (session && (!top || top === "signin") && !route.params.get("code")) navigate(href.workflows(), true);
  }, [session, top, route.params]);

  useEffect(() => {
    const titles: Record<string, string> = {
      signin: "Sign in",
      workflows: "Workflows",
      edit: "Editor",
      runs: route.parts[1] ? "Run" : "Runs",
      compare: "Compare runs",
    };
    document.title = `${titles[view] ?? "Studio"} · Orchestrate Studio`;
  }, [view, route.parts]);

  if (view === "signin" || !session) {
    return (
      <Frame session={null} view="signin">
        <SignIn code={route.params.get("code")} expired={expired} onSignedIn={signedIn} mode={mode} />
      </Frame>
    );
  }

  const editing = tabs.length > 0;
  return (
    <Frame
      session={session}
      view={view}
      editorHref={editing ? href.edit(tabs[0].id) : null}
      onSignOut={() => {
        void signOut();
        setSession(null);
        setExpired(false);
        navigate("#/signin", true);
      }}
    >
      <Suspense fallback={<Spinner label="Loading…" />}>
        {view === "workflows" && route.parts[2] === "run" && route.parts[1] ? (
          <RunForm workflowId={route.parts[1]} />
        ) : view === "workflows" ? (
          <WorkflowList />
        ) : view === "edit" && route.parts[1] ? (
          <EditorView workflowId={route.parts[1]} />
        ) : view === "runs" && route.parts[1] ? (
          <RunView runId={route.parts[1]} step={route.params.get("step")} />
        ) : view === "runs" ? (
          <History workflowId={route.params.get("workflow") ?? ""} status={route.params.get("status") ?? ""} />
        ) : view === "compare" ? (
          <Compare a={route.params.get("a") ?? ""} b={route.params.get("b") ?? ""} />
        ) : (
          <NotFound />
        )}
      </Suspense>
    </Frame>
  );
}

function Frame(props: {
  session: Session | null;
  view: string;
  editorHref?: string | null;
  onSignOut?: () => void;
  children: React.ReactNode;
}) {
  const link = (target: string, label: string, active: boolean) => (
    <a href={target} className={active ? "nav-link active" : "nav-link"} aria-current={active ? "page" : undefined}>
      {label}
    </a>
  );
  return (
    <div className="app">
      <a href="#main" className="skip-link" onClick={(e) => (e.preventDefault(), document.getElementById("main")?.focus())}>
        Skip to content
      </a>
      <header className="topbar">
        <a href={href.workflows()} className="brand">
          <span className="brand-mark" aria-hidden="true">
            <i />
            <i />
            <i />
          </span>
          Orchestrate <span className="brand-sub">Studio</span>
        </a>
        {props.session && (
          <nav aria-label="Main">
            {link(href.workflows(), "Workflows", props.view === "workflows")}
            {props.editorHref && link(props.editorHref, "Editor", props.view === "edit")}
            {link(href.history(), "Runs", props.view === "runs" || props.view === "compare")}
          </nav>
        )}
        <div className="topbar-end">
          {props.session && (
            <>
              <span className="muted user">{props.session.email ?? "signed in"}</span>
              <button type="button" onClick={props.onSignOut}>
                Sign out
              </button>
            </>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {props.children}
      </main>
    </div>
  );
}

function NotFound() {
  return (
    <section className="page">
      <h1>Nothing here</h1>
      <p>
        This address shows nothing. <a href={href.workflows()}>Go to your workflows</a>.
      </p>
    </section>
  );
}

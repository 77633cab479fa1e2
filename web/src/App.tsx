import { useEffect, useState } from "react";
import { Link, NavLink, Navigate, Route, Routes, useNavigate } from "react-router";
import { api, unwrap, type Schemas } from "./api/client";
import { Agent } from "./pages/Agent";
import { Agents } from "./pages/Agents";
import { Alerts } from "./pages/Alerts";
import { Compare } from "./pages/Compare";
import { Keys } from "./pages/Keys";
import { Login } from "./pages/Login";
import { Members } from "./pages/Members";
import { Metrics } from "./pages/Metrics";
import { Plan } from "./pages/Plan";
import { Logs } from "./pages/Logs";
import { PromptDetail, Prompts } from "./pages/Prompts";
import { Trace } from "./pages/Trace";
import { Traces } from "./pages/Traces";
import { Webhooks } from "./pages/Webhooks";

type Me = Schemas["Me"];

function useTheme(): [string, () => void] {
  const [theme, setTheme] = useState(() => document.documentElement.dataset.theme ?? "auto");
  useEffect(() => {
    if (theme === "auto") delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = theme;
  }, [theme]);
  const next = () => setTheme((t) => (t === "auto" ? "dark" : t === "dark" ? "light" : "auto"));
  return [theme, next];
}

export function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [theme, nextTheme] = useTheme();
  const navigate = useNavigate();

  const refresh = () =>
    api
      .GET("/auth/me")
      .then((r) => setMe(r.data ?? null))
      .catch(() => setMe(null));
  useEffect(() => {
    refresh();
  }, []);

  if (me === undefined)
    return (
      <p className="state" role="status">
        Loading…
      </p>
    );
  if (me === null)
    return (
      <Routes>
        <Route path="*" element={<Login onDone={refresh} />} />
      </Routes>
    );

  const logout = async () => {
    await api.POST("/auth/logout").catch(() => undefined);
    setMe(null);
    navigate("/");
  };

  return (
    <div className="shell">
      <header className="top">
        <Link to="/" className="brand">
          AgentVista
        </Link>
        <nav aria-label="Main">
          <NavLink to="/agents">Agents</NavLink>
          <NavLink to="/compare">Compare</NavLink>
          <NavLink to="/traces">Traces</NavLink>
          <NavLink to="/logs">Logs</NavLink>
          <NavLink to="/explore/metrics">Metrics</NavLink>
          <NavLink to="/prompts">Prompts</NavLink>
          <NavLink to="/alerts">Alerts</NavLink>
          <NavLink to="/settings/api-keys">API keys</NavLink>
          <NavLink to="/settings/webhooks">Webhooks</NavLink>
          <NavLink to="/settings/members">Members</NavLink>
          <NavLink to="/settings/plan">Plan</NavLink>
        </nav>
        <span className="who">{me.email}</span>
        <button type="button" onClick={nextTheme} aria-label={`Theme: ${theme}`}>
          Theme: {theme}
        </button>
        <button type="button" onClick={logout}>
          Log out
        </button>
      </header>
      <main>
        <Routes>
          <Route path="/" element={<Navigate to="/agents" replace />} />
          <Route path="/agents" element={<Agents />} />
          <Route path="/agents/:agentId" element={<Agent />} />
          <Route path="/compare" element={<Compare />} />
          <Route path="/logs" element={<Logs />} />
          {/* Not /metrics: that path is each service's Prometheus endpoint
              (and the routers answer it 404), so a reload there would not
              reach the dashboard. */}
          <Route path="/explore/metrics" element={<Metrics />} />
          <Route path="/prompts" element={<Prompts />} />
          <Route path="/alerts" element={<Alerts />} />
          <Route path="/prompts/:name" element={<PromptDetail />} />
          <Route path="/traces" element={<Traces />} />
          <Route path="/traces/:traceId" element={<Trace />} />
          <Route path="/settings/api-keys" element={<Keys />} />
          <Route path="/settings/webhooks" element={<Webhooks />} />
          <Route path="/settings/members" element={<Members />} />
          <Route path="/settings/plan" element={<Plan />} />
          <Route path="*" element={<p className="state">This page does not exist.</p>} />
        </Routes>
      </main>
    </div>
  );
}

/** Load data for a page: `[data, error, reload]`. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): [T | undefined, string | null, () => void] {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setError(null);
    load()
      .then((d) => live && setData(d))
      .catch((e: unknown) => live && setError(e instanceof Error ? e.message : String(e)));
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return [data, error, () => setTick((t) => t + 1)];
}

export { unwrap };

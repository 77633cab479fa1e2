import { useEffect, useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { count, when } from "../format";

const KEYS = ["q", "severity", "service_name", "start", "end"] as const;

/** Log search: terms, severity, service and time, kept in the URL; each
 * record links to its trace. */
export function Logs() {
  const [search, setSearch] = useSearchParams();
  const query = Object.fromEntries(KEYS.map((k) => [k, search.get(k) ?? ""]).filter(([, v]) => v));
  const key = new URLSearchParams(query).toString();
  const [result, setResult] = useState<Schemas["LogSearch"] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    setError(null);
    setResult(null);
    api
      .GET("/dashboard/logs/search", { params: { query: { ...query, limit: 100 } as never } })
      .then((r) => live && setResult(unwrap(r)))
      .catch((e: Error) => live && setError(e.message));
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);

  const apply = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const next = new URLSearchParams();
    for (const k of KEYS) {
      const v = String(f.get(k) ?? "").trim();
      if (v) next.set(k, v);
    }
    setSearch(next);
  };

  return (
    <section aria-labelledby="logs-title">
      <h1 id="logs-title">Logs</h1>
      <form className="filters" onSubmit={apply} key={key}>
        <label>
          Terms
          <input name="q" type="search" defaultValue={search.get("q") ?? ""} placeholder="payment failed" />
        </label>
        <label>
          Severity
          <select name="severity" defaultValue={search.get("severity") ?? ""}>
            <option value="">Any</option>
            {["trace", "debug", "info", "warn", "error", "fatal"].map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Service
          <input name="service_name" defaultValue={search.get("service_name") ?? ""} />
        </label>
        <label>
          From (RFC 3339)
          <input name="start" defaultValue={search.get("start") ?? ""} />
        </label>
        <label>
          To (RFC 3339)
          <input name="end" defaultValue={search.get("end") ?? ""} />
        </label>
        <div className="actions">
          <button type="submit">Search</button>
        </div>
      </form>
      {error ? (
        <p className="error" role="alert">
          {error}
        </p>
      ) : !result ? (
        <p className="state" role="status">
          Searching…
        </p>
      ) : result.logs.length === 0 ? (
        <p className="state">No log record matches.</p>
      ) : (
        <>
          <p className="muted">{count(result.total)} records</p>
          <table>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Severity</th>
                <th scope="col">Service</th>
                <th scope="col">Body</th>
                <th scope="col">Trace</th>
              </tr>
            </thead>
            <tbody>
              {result.logs.map((l) => (
                <tr key={l.id}>
                  <td>{when(l.timestamp)}</td>
                  <td>
                    <span className={`badge ${l.severity}`}>{l.severity}</span>
                  </td>
                  <td>{l.service_name}</td>
                  <td>{l.body}</td>
                  <td>{l.trace_id ? <Link to={`/traces/${l.trace_id}`}>Open trace</Link> : "–"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}

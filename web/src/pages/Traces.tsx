import { useEffect, useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router";
import { api, unwrap, type Run, type TraceList } from "../api/client";
import { FILTER_KEYS, fromSearch, toQuery, toSearch, type Filters } from "../filters";
import { ago, count, ms, usd } from "../format";

const POLL_MS = 10_000;

/** The traces explorer: every filter of the list API, kept in the URL;
 * cursor paging; new runs appear while the page is open (polled). */
export function Traces() {
  const [search, setSearch] = useSearchParams();
  const filters = fromSearch(search);
  const key = toSearch(filters).toString();
  const [pages, setPages] = useState<TraceList[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);

  const load = async (cursor?: string | null) => {
    const r = await api.GET("/dashboard/traces", { params: { query: toQuery(filters, cursor) as never } });
    return unwrap(r);
  };

  useEffect(() => {
    let live = true;
    setLoading(true);
    setError(null);
    load()
      .then((p) => live && setPages([p]))
      .catch((e: Error) => live && setError(e.message))
      .finally(() => live && setLoading(false));
    // New runs while the page is open: refresh the first page.
    const timer = setInterval(() => {
      load()
        .then((p) => live && setPages((old) => [p, ...old.slice(1)]))
        .catch(() => undefined);
    }, POLL_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);

  const apply = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const next: Filters = {};
    for (const k of FILTER_KEYS) {
      const v = f.get(k);
      if (typeof v === "string" && v.trim()) next[k] = v.trim();
    }
    setSearch(toSearch(next));
  };

  const more = async () => {
    const last = pages[pages.length - 1];
    if (!last?.next_cursor) return;
    try {
      const p = await load(last.next_cursor);
      setPages((old) => [...old, p]);
    } catch (e) {
      setError((e as Error).message);
    }
  };

  const runs: Run[] = pages.flatMap((p) => p.traces);
  const total = pages[0]?.total;
  const field = (name: keyof Filters, label: string, props: Record<string, unknown> = {}) => (
    <label>
      {label}
      <input name={name} defaultValue={filters[name] ?? ""} {...props} />
    </label>
  );

  return (
    <section aria-labelledby="traces-title">
      <h1 id="traces-title">Traces</h1>
      <form className="filters" onSubmit={apply} key={key}>
        {field("agent", "Agent")}
        <label>
          Status
          <select name="status" defaultValue={filters.status ?? ""}>
            <option value="">Any</option>
            <option value="completed">completed</option>
            <option value="failed">failed</option>
            <option value="running">running</option>
            <option value="timed_out">timed_out</option>
          </select>
        </label>
        <label>
          Success
          <select name="success" defaultValue={filters.success ?? ""}>
            <option value="">Any</option>
            <option value="true">Succeeded</option>
            <option value="false">Did not succeed</option>
          </select>
        </label>
        {field("outcome", "Outcome")}
        {field("model", "Model")}
        <label>
          Span type
          <select name="span_type" defaultValue={filters.span_type ?? ""}>
            <option value="">Any</option>
            {["agent", "llm", "tool", "http", "db", "custom"].map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </label>
        {field("q", "Name contains")}
        {field("attribute", "Attribute (key=value)")}
        {field("min_duration_ms", "Min duration (ms)", { type: "number", min: 0 })}
        {field("max_duration_ms", "Max duration (ms)", { type: "number", min: 0 })}
        {field("start", "From (RFC 3339)", { placeholder: "2026-11-01T00:00:00Z" })}
        {field("end", "To (RFC 3339)")}
        <div className="actions">
          <button type="submit">Apply filters</button>
          <button type="button" className="link" onClick={() => setSearch(new URLSearchParams())}>
            Clear
          </button>
        </div>
      </form>
      {error ? (
        <p className="error" role="alert">
          {error}
        </p>
      ) : loading && runs.length === 0 ? (
        <p className="state" role="status">
          Loading traces…
        </p>
      ) : runs.length === 0 ? (
        <p className="state">No trace matches these filters.</p>
      ) : (
        <>
          <p className="muted">{count(total ?? runs.length)} runs</p>
          <table>
            <thead>
              <tr>
                <th scope="col">Started</th>
                <th scope="col">Agent</th>
                <th scope="col">Status</th>
                <th scope="col">Outcome</th>
                <th scope="col" className="num">
                  Duration
                </th>
                <th scope="col" className="num">
                  Tokens
                </th>
                <th scope="col" className="num">
                  Cost
                </th>
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => (
                <tr key={r.trace_id}>
                  <td>
                    <Link to={`/traces/${r.trace_id}`} title={r.started_at}>
                      {ago(r.started_at)}
                    </Link>
                  </td>
                  <td>{r.agent_name}</td>
                  <td>
                    <span className={`badge ${r.status}`}>{r.status}</span>
                  </td>
                  <td>
                    {r.success === true ? "✓ " : r.success === false ? "✗ " : ""}
                    {r.outcome ?? ""}
                  </td>
                  <td className="num">{ms(r.duration_ms)}</td>
                  <td className="num">{count(r.total_tokens)}</td>
                  <td className="num">{usd(r.total_cost_usd)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {pages[pages.length - 1]?.next_cursor && (
            <button type="button" onClick={more}>
              Load more
            </button>
          )}
        </>
      )}
    </section>
  );
}

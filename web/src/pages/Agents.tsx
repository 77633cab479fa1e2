import { useMemo, useState } from "react";
import { Link } from "react-router";
import { api, unwrap, type AgentSummary } from "../api/client";
import { useLoad } from "../App";
import { ago, count, ms, percent, usd } from "../format";
import { Sparkline } from "../Sparkline";

const runsLabel = (n: number) => `${count(n)} ${n === 1 ? "run" : "runs"}`;

type SortKey = "name" | "total_runs" | "success_rate" | "p95_duration_ms" | "total_cost" | "last_run_at";

/** Every agent with its runs, success rate, p95 duration, cost, last run
 * and a 30-day sparkline of its runs; sort and search. */
export function Agents() {
  const [agents, error, reload] = useLoad(async () => unwrap(await api.GET("/agents")), []);
  // The sparklines come from one read for every agent; without them the
  // table still shows (a dash in their column).
  const [daily] = useLoad(async () => {
    const d = unwrap(await api.GET("/agents/daily", { params: { query: { days: "30" } } }));
    return new Map(d.agents.map((a) => [a.agent_id, a.runs]));
  }, []);
  const [query, setQuery] = useState("");
  const [sort, setSort] = useState<SortKey>("total_runs");
  const rows = useMemo(() => {
    const q = query.trim().toLowerCase();
    const list = (agents ?? []).filter((a) => a.name.toLowerCase().includes(q));
    const key = (a: AgentSummary): number | string =>
      sort === "name" ? a.name : ((a[sort] as number | string | null) ?? -1);
    return list.sort((a, b) => {
      const x = key(a);
      const y = key(b);
      if (sort === "name") return String(x).localeCompare(String(y));
      return x < y ? 1 : x > y ? -1 : 0;
    });
  }, [agents, query, sort]);

  return (
    <section aria-labelledby="agents-title">
      <h1 id="agents-title">Agents</h1>
      <div className="toolbar">
        <label>
          Search
          <input type="search" value={query} onChange={(e) => setQuery(e.target.value)} placeholder="Agent name" />
        </label>
        <label>
          Sort by
          <select value={sort} onChange={(e) => setSort(e.target.value as SortKey)}>
            <option value="total_runs">Runs</option>
            <option value="success_rate">Success rate</option>
            <option value="p95_duration_ms">p95 duration</option>
            <option value="total_cost">Cost</option>
            <option value="last_run_at">Last run</option>
            <option value="name">Name</option>
          </select>
        </label>
      </div>
      {error ? (
        <p className="error" role="alert">
          {error} <button onClick={reload}>Retry</button>
        </p>
      ) : agents === undefined ? (
        <p className="state" role="status">
          Loading agents…
        </p>
      ) : rows.length === 0 ? (
        <p className="state">
          {agents.length === 0
            ? "No agents yet: send a trace with an API key (Settings → API keys) and it appears here."
            : "No agent matches this search."}
        </p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Agent</th>
              <th scope="col" className="num">
                Runs
              </th>
              <th scope="col" className="num">
                Success rate
              </th>
              <th scope="col" className="num">
                p95 duration
              </th>
              <th scope="col" className="num">
                Cost
              </th>
              <th scope="col" className="num">
                Avg cost / run
              </th>
              <th scope="col">Last run</th>
              <th scope="col">Runs, last 30 days</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((a) => (
              <tr key={a.id}>
                <td>
                  <Link to={`/agents/${a.id}`}>{a.name}</Link>
                </td>
                <td className="num">{count(a.total_runs)}</td>
                <td className="num">{percent(a.success_rate)}</td>
                <td className="num">{ms(a.p95_duration_ms)}</td>
                <td className="num">{usd(a.total_cost)}</td>
                <td className="num">{usd(a.avg_cost_per_run)}</td>
                <td>{ago(a.last_run_at)}</td>
                <td>
                  {daily === undefined ? (
                    "–"
                  ) : (
                    <Sparkline
                      values={daily.get(a.id) ?? Array(30).fill(0)}
                      label={`${a.name}: ${runsLabel((daily.get(a.id) ?? []).reduce((x, y) => x + y, 0))} in 30 days`}
                    />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

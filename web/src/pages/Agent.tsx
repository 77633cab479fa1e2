import { useMemo, useState } from "react";
import { Link, useParams } from "react-router";
import { api, unwrap } from "../api/client";
import { useLoad } from "../App";
import { Chart } from "../Chart";
import { ago, count, ms, percent, usd } from "../format";

const WINDOWS = [7, 30, 90] as const;

/** One agent: daily runs, success rate, cost and p95 over 7/30/90 days,
 * its outcome breakdown and recent runs. */
export function Agent() {
  const { agentId = "" } = useParams();
  const [days, setDays] = useState<(typeof WINDOWS)[number]>(30);
  const path = { params: { path: { agent_id: agentId } } };
  const [detail, detailError] = useLoad(async () => unwrap(await api.GET("/agents/{agent_id}", path)), [agentId]);
  const [stats, statsError] = useLoad(
    async () =>
      unwrap(
        await api.GET("/agents/{agent_id}/stats", {
          params: { path: { agent_id: agentId }, query: { days: String(days) } },
        }),
      ),
    [agentId, days],
  );
  const [runs] = useLoad(async () => unwrap(await api.GET("/agents/{agent_id}/runs", path)), [agentId]);
  const series = useMemo(() => {
    const d = stats?.days ?? [];
    return {
      dates: d.map((x) => x.date),
      runs: d.map((x) => x.runs),
      success: d.map((x) => x.success_rate ?? null),
      cost: d.map((x) => x.total_cost ?? null),
      p95: d.map((x) => x.p95_duration_ms ?? null),
    };
  }, [stats]);
  const error = detailError ?? statsError;
  if (error)
    return (
      <p className="error" role="alert">
        {error} <Link to="/agents">Back to agents</Link>
      </p>
    );
  if (!detail || !stats)
    return (
      <p className="state" role="status">
        Loading agent…
      </p>
    );
  const outcomes = detail.cost_by_outcome;

  return (
    <section aria-labelledby="agent-title">
      <p>
        <Link to="/agents">← Agents</Link>
      </p>
      <h1 id="agent-title">{stats.agent_name}</h1>
      <dl className="facts">
        <dt>Runs</dt>
        <dd>{count(detail.total_runs)}</dd>
        <dt>Success rate</dt>
        <dd>{percent(detail.success_rate)}</dd>
        <dt>p95 duration (completed runs)</dt>
        <dd>{ms(detail.p95_duration_ms)}</dd>
        <dt>Total cost</dt>
        <dd>{usd(detail.total_cost)}</dd>
      </dl>
      <div className="toolbar" role="group" aria-label="Window">
        {WINDOWS.map((w) => (
          <button key={w} type="button" aria-pressed={w === days} onClick={() => setDays(w)}>
            {w} days
          </button>
        ))}
        <Link to={`/traces?agent=${encodeURIComponent(stats.agent_name)}`}>All its traces →</Link>
      </div>
      <div className="charts">
        <Chart title="Runs" days={series.dates} values={series.runs} format={(v) => count(v)} />
        <Chart title="Success rate" days={series.dates} values={series.success} format={percent} color="#137333" />
        <Chart title="Cost" days={series.dates} values={series.cost} format={usd} color="#b45309" />
        <Chart title="p95 duration" days={series.dates} values={series.p95} format={ms} color="#6d28d9" />
      </div>
      <h2 id="outcomes-title">Outcomes and their cost</h2>
      {outcomes.length === 0 ? (
        <p className="state">No run of this agent has an outcome yet.</p>
      ) : (
        <table aria-labelledby="outcomes-title">
          <thead>
            <tr>
              <th scope="col">Outcome</th>
              <th scope="col" className="num">
                Runs
              </th>
              <th scope="col" className="num">
                Share
              </th>
              <th scope="col" className="num">
                Total cost
              </th>
              <th scope="col" className="num">
                Cost per run
              </th>
            </tr>
          </thead>
          <tbody>
            {outcomes.map((o) => (
              <tr key={o.outcome}>
                <td>{o.outcome}</td>
                <td className="num">{count(o.runs)}</td>
                <td className="num">{percent(detail.total_runs ? (100 * o.runs) / detail.total_runs : null)}</td>
                <td className="num">{usd(o.total_cost)}</td>
                <td className="num">{usd(o.avg_cost_per_run)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Recent runs</h2>
      {!runs ? (
        <p className="state" role="status">
          Loading runs…
        </p>
      ) : runs.runs.length === 0 ? (
        <p className="state">No run yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Started</th>
              <th scope="col">Status</th>
              <th scope="col">Outcome</th>
              <th scope="col" className="num">
                Duration
              </th>
              <th scope="col" className="num">
                Cost
              </th>
            </tr>
          </thead>
          <tbody>
            {runs.runs.map((r) => (
              <tr key={r.trace_id}>
                <td>
                  <Link to={`/traces/${r.trace_id}`}>{ago(r.started_at)}</Link>
                </td>
                <td>
                  <span className={`badge ${r.status}`}>{r.status}</span>
                </td>
                <td>{r.outcome ?? ""}</td>
                <td className="num">{ms(r.duration_ms)}</td>
                <td className="num">{usd(r.total_cost_usd)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

import { useEffect, useMemo, useRef, useState } from "react";
import { useSearchParams } from "react-router";
import { api, unwrap } from "../api/client";
import { useLoad } from "../App";
import { Chart } from "../Chart";
import { count, ms, percent, usd } from "../format";

/** 2 to 10 agents side by side over a window: rates, latency percentiles,
 * cost, tokens, outcomes and daily series. The selection is in the URL. */
export function Compare() {
  const [search, setSearch] = useSearchParams();
  const inUrl = search.get("agent_ids") ?? "";
  // The selection answers a click at once (a checkbox must not wait for the
  // navigation that records it in the URL); the URL stays its record, and
  // a change of the URL (back, a link) replaces it.
  const [chosen, setChosen] = useState<string[]>(() => inUrl.split(",").filter(Boolean));
  const written = useRef(inUrl);
  useEffect(() => {
    if (inUrl !== written.current) {
      written.current = inUrl;
      setChosen(inUrl.split(",").filter(Boolean));
    }
  }, [inUrl]);
  const days = search.get("days") ?? "30";
  const [agents, agentsError] = useLoad(async () => unwrap(await api.GET("/agents")), []);
  const ready = chosen.length >= 2 && chosen.length <= 10;
  const [result, error] = useLoad(
    async () =>
      ready
        ? unwrap(
            await api.GET("/dashboard/traces/compare", {
              params: { query: { agent_ids: chosen.join(","), days: Number(days) } as never },
            }),
          )
        : undefined,
    [chosen.join(","), days],
  );
  const toggle = (id: string) => {
    const next = chosen.includes(id) ? chosen.filter((c) => c !== id) : [...chosen, id].slice(0, 10);
    setChosen(next);
    written.current = next.join(",");
    setSearch((prev) => {
      const q = new URLSearchParams(prev);
      q.set("agent_ids", next.join(","));
      return q;
    });
  };
  const dates = useMemo(() => result?.agents[0]?.daily.map((d) => d.date) ?? [], [result]);
  const series = (
    pick: (d: { runs: number; success_rate?: number | null; total_cost?: number | null }) => number | null,
  ) => (result?.agents ?? []).map((a) => ({ label: a.agent_name ?? a.agent_id, values: a.daily.map(pick) }));

  return (
    <section aria-labelledby="compare-title">
      <h1 id="compare-title">Compare agents</h1>
      {agentsError && (
        <p className="error" role="alert">
          {agentsError}
        </p>
      )}
      <fieldset className="picker">
        <legend>Agents (2 to 10)</legend>
        {(agents ?? []).map((a) => (
          <label key={a.id} className="check">
            <input type="checkbox" checked={chosen.includes(a.id)} onChange={() => toggle(a.id)} /> {a.name}
          </label>
        ))}
      </fieldset>
      <label>
        Window
        <select
          value={days}
          onChange={(e) => {
            const value = e.target.value;
            setSearch((prev) => {
              const q = new URLSearchParams(prev);
              q.set("days", value);
              return q;
            });
          }}
        >
          <option value="7">7 days</option>
          <option value="30">30 days</option>
          <option value="90">90 days</option>
        </select>
      </label>
      {!ready ? (
        <p className="state">Pick two to ten agents.</p>
      ) : error ? (
        <p className="error" role="alert">
          {error}
        </p>
      ) : !result ? (
        <p className="state" role="status">
          Comparing…
        </p>
      ) : (
        <>
          <table>
            <thead>
              <tr>
                <th scope="col">Agent</th>
                <th scope="col" className="num">
                  Runs
                </th>
                <th scope="col" className="num">
                  Success
                </th>
                <th scope="col" className="num">
                  Errors
                </th>
                <th scope="col" className="num">
                  p50
                </th>
                <th scope="col" className="num">
                  p95
                </th>
                <th scope="col" className="num">
                  p99
                </th>
                <th scope="col" className="num">
                  Cost
                </th>
                <th scope="col" className="num">
                  Avg cost / run
                </th>
                <th scope="col" className="num">
                  Tokens
                </th>
                <th scope="col">Outcomes</th>
              </tr>
            </thead>
            <tbody>
              {result.agents.map((a) => (
                <tr key={a.agent_id}>
                  <th scope="row">{a.agent_name ?? a.agent_id}</th>
                  <td className="num">{count(a.runs)}</td>
                  <td className="num">{percent(a.success_rate)}</td>
                  <td className="num">{percent(a.error_rate)}</td>
                  <td className="num">{ms(a.p50_duration_ms)}</td>
                  <td className="num">{ms(a.p95_duration_ms)}</td>
                  <td className="num">{ms(a.p99_duration_ms)}</td>
                  <td className="num">{usd(a.total_cost)}</td>
                  <td className="num">{usd(a.avg_cost_per_run)}</td>
                  <td className="num">{count(a.total_tokens)}</td>
                  <td>
                    {Object.entries(a.outcomes)
                      .map(([o, n]) => `${o}: ${n}`)
                      .join(", ") || "–"}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <div className="charts">
            <Chart title="Runs per day" days={dates} series={series((d) => d.runs)} format={(v) => count(v)} />
            <Chart
              title="Success rate per day"
              days={dates}
              series={series((d) => d.success_rate ?? null)}
              format={percent}
            />
            <Chart title="Cost per day" days={dates} series={series((d) => d.total_cost ?? null)} format={usd} />
          </div>
        </>
      )}
    </section>
  );
}

import { useMemo, type FormEvent } from "react";
import { useSearchParams } from "react-router";
import { api, unwrap } from "../api/client";
import { useLoad } from "../App";
import { Chart } from "../Chart";
import { count, when } from "../format";

const AGGS = ["avg", "min", "max", "sum", "count", "p50", "p90", "p95", "p99"] as const;

/** The metrics explorer: the organization's streams, and one stream as a
 * chart with label filters, step and aggregation (histogram percentiles
 * included). Everything is kept in the URL. */
export function Metrics() {
  const [search, setSearch] = useSearchParams();
  const [streams, streamsError] = useLoad(async () => unwrap(await api.GET("/dashboard/metrics/")), []);
  const name = search.get("name") ?? "";
  const step = search.get("step") ?? "3600";
  const agg = search.get("agg") ?? "avg";
  const labels = search.get("labels") ?? "";
  const start = search.get("start") ?? new Date(Date.now() - 7 * 86_400_000).toISOString().slice(0, 19) + "Z";
  const [result, error] = useLoad(
    async () =>
      name
        ? unwrap(
            await api.GET("/dashboard/metrics/query", {
              params: {
                query: { name, step: Number(step), agg, start, ...(labels ? { labels } : {}) } as never,
              },
            }),
          )
        : undefined,
    [name, step, agg, labels, start],
  );
  const chart = useMemo(() => {
    const b = result?.buckets ?? [];
    return { times: b.map((x) => Date.parse(x.timestamp) / 1000), values: b.map((x) => x.value ?? null) };
  }, [result]);

  const apply = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const q = new URLSearchParams(search);
    for (const k of ["step", "agg", "labels", "start"]) {
      const v = String(f.get(k) ?? "").trim();
      if (v) q.set(k, v);
      else q.delete(k);
    }
    setSearch(q);
  };
  const pick = (n: string) => {
    const q = new URLSearchParams(search);
    q.set("name", n);
    setSearch(q);
  };
  const unit = result?.unit ? ` ${result.unit}` : "";

  return (
    <section aria-labelledby="metrics-title">
      <h1 id="metrics-title">Metrics</h1>
      {streamsError ? (
        <p className="error" role="alert">
          {streamsError}
        </p>
      ) : !streams ? (
        <p className="state" role="status">
          Loading metric streams…
        </p>
      ) : streams.length === 0 ? (
        <p className="state">No metric yet: export OTLP metrics (README, "Sending OpenTelemetry data").</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Metric</th>
              <th scope="col">Type</th>
              <th scope="col">Unit</th>
              <th scope="col" className="num">
                Points
              </th>
            </tr>
          </thead>
          <tbody>
            {streams.map((s) => (
              <tr key={s.name} aria-selected={s.name === name}>
                <td>
                  <button type="button" className="link" onClick={() => pick(s.name)}>
                    {s.name}
                  </button>
                </td>
                <td>{s.metric_type}</td>
                <td>{s.unit || "–"}</td>
                <td className="num">{count(s.data_point_count)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {name && (
        <>
          <h2>{name}</h2>
          <form className="filters" onSubmit={apply} key={search.toString()} aria-label="Query">
            <label>
              Step (seconds)
              <input name="step" type="number" min={1} defaultValue={step} />
            </label>
            <label>
              Aggregation
              <select name="agg" defaultValue={agg}>
                {AGGS.map((a) => (
                  <option key={a}>{a}</option>
                ))}
              </select>
            </label>
            <label>
              Labels (JSON)
              <input name="labels" defaultValue={labels} placeholder='{"route":"/chat"}' />
            </label>
            <label>
              From (RFC 3339)
              <input name="start" defaultValue={start} />
            </label>
            <div className="actions">
              <button type="submit">Query</button>
            </div>
          </form>
          {error ? (
            <p className="error" role="alert">
              {error}
            </p>
          ) : !result ? (
            <p className="state" role="status">
              Querying…
            </p>
          ) : (result.buckets ?? []).length === 0 ? (
            <p className="state">No point in this range.</p>
          ) : (
            <>
              <Chart
                title={`${agg} of ${name} per ${step} s`}
                days={[]}
                times={chart.times}
                values={chart.values}
                format={(v) => (v === null ? "–" : `${Number(v.toPrecision(4))}${unit}`)}
              />
              <p className="muted">
                {(result.buckets ?? []).length} buckets from {when(result.buckets?.[0]?.timestamp)}
              </p>
            </>
          )}
        </>
      )}
    </section>
  );
}

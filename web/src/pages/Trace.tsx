import { useVirtualizer } from "@tanstack/react-virtual";
import { useMemo, useRef, useState, type FormEvent } from "react";
import { Link, useParams } from "react-router";
import { api, failure, unwrap, type SpanNode } from "../api/client";
import { useLoad } from "../App";
import { count, ms, usd, when } from "../format";
import { layout } from "../waterfall";

const ROW = 28;

/** One trace: the span waterfall (collapse/expand, type colours, durations,
 * tokens and cost per span and subtree), the selected span's details and
 * the trace's logs, and the run's outcome (PATCH). */
export function Trace() {
  const { traceId = "" } = useParams();
  const [detail, error, reload] = useLoad(
    async () => unwrap(await api.GET("/dashboard/traces/{trace_id}", { params: { path: { trace_id: traceId } } })),
    [traceId],
  );
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const [selected, setSelected] = useState<string | null>(null);
  const rows = useMemo(() => (detail ? layout(detail.spans, collapsed) : []), [detail, collapsed]);
  const scroller = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW,
    overscan: 20,
  });

  if (error)
    return (
      <p className="error" role="alert">
        {error} <Link to="/traces">Back to traces</Link>
      </p>
    );
  if (!detail)
    return (
      <p className="state" role="status">
        Loading trace…
      </p>
    );
  const run = detail.trace;
  const span: SpanNode | undefined = detail.spans.find((s) => s.span_id === selected);
  const toggle = (id: string) =>
    setCollapsed((c) => {
      const n = new Set(c);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });

  return (
    <section aria-labelledby="trace-title">
      <p>
        <Link to="/traces">← Traces</Link>
      </p>
      <h1 id="trace-title">
        {run.agent_name} <span className={`badge ${run.status}`}>{run.status}</span>
      </h1>
      <dl className="facts">
        <dt>Started</dt>
        <dd>{when(run.started_at)}</dd>
        <dt>Duration</dt>
        <dd>{ms(run.duration_ms)}</dd>
        <dt>Tokens</dt>
        <dd>{count(run.total_tokens)}</dd>
        <dt>Cost</dt>
        <dd>{usd(run.total_cost_usd)}</dd>
        <dt>Spans</dt>
        <dd>{count(detail.span_count)}</dd>
        <dt>Trace id</dt>
        <dd>
          <code>{run.trace_id}</code>
        </dd>
      </dl>
      <Outcome traceId={run.trace_id} success={run.success ?? null} outcome={run.outcome ?? null} onSaved={reload} />
      <h2>Waterfall</h2>
      <div
        className="waterfall"
        ref={scroller}
        role="tree"
        aria-label="Span tree"
        style={{ height: Math.min(rows.length * ROW + 4, 640) }}
      >
        <div style={{ height: virtual.getTotalSize(), position: "relative" }}>
          {virtual.getVirtualItems().map((v) => {
            const row = rows[v.index];
            const s = row.span;
            return (
              <div
                key={s.span_id}
                role="treeitem"
                aria-level={row.depth + 1}
                aria-expanded={row.hasChildren ? !row.collapsed : undefined}
                aria-selected={selected === s.span_id}
                className={`wrow${selected === s.span_id ? " selected" : ""}`}
                style={{ transform: `translateY(${v.start}px)`, height: ROW }}
              >
                <div className="wlabel" style={{ paddingLeft: row.depth * 14 }}>
                  {row.hasChildren ? (
                    <button
                      type="button"
                      className="twisty"
                      aria-label={row.collapsed ? `Expand ${s.name}` : `Collapse ${s.name}`}
                      onClick={() => toggle(s.span_id)}
                    >
                      {row.collapsed ? "▸" : "▾"}
                    </button>
                  ) : (
                    <span className="twisty" aria-hidden="true" />
                  )}
                  <button type="button" className="link" onClick={() => setSelected(s.span_id)}>
                    <span className={`type ${s.type}`}>{s.type}</span> {s.name}
                  </button>
                </div>
                <div className="wtrack" aria-hidden="true">
                  <div
                    className={`wbar ${s.type}${s.status === "failed" ? " failed" : ""}`}
                    style={{ left: `${row.left * 100}%`, width: `${row.width * 100}%` }}
                  />
                </div>
                <div className="wnums">
                  {ms(s.duration_ms)} · {count(s.subtree_tokens, "tok")} · {usd(s.subtree_cost_usd)}
                </div>
              </div>
            );
          })}
        </div>
      </div>
      {span && <SpanPanel span={span} />}
      <h2>Logs</h2>
      {detail.logs.length === 0 ? (
        <p className="state">No log record is linked to this trace.</p>
      ) : (
        <ul className="logs">
          {detail.logs.map((l) => (
            <li key={l.id}>
              <span className={`badge ${l.severity}`}>{l.severity}</span> {when(l.timestamp)} {l.body}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function SpanPanel({ span }: { span: SpanNode }) {
  return (
    <aside className="panel" aria-label={`Span ${span.name}`}>
      <h2>{span.name}</h2>
      <dl className="facts">
        <dt>Type</dt>
        <dd>{span.type}</dd>
        <dt>Status</dt>
        <dd>{span.status}</dd>
        <dt>Duration</dt>
        <dd>{ms(span.duration_ms)}</dd>
        {span.model && (
          <>
            <dt>Model</dt>
            <dd>{span.model}</dd>
          </>
        )}
        <dt>Tokens (in / out)</dt>
        <dd>
          {count(span.input_tokens)} / {count(span.output_tokens)}
        </dd>
        <dt>Cost</dt>
        <dd>
          {usd(span.cost_usd)}
          {span.cost_computed ? " (priced from tokens)" : ""}
        </dd>
      </dl>
      {span.error && (
        <>
          <h3>Error</h3>
          <pre className="error">{span.error}</pre>
        </>
      )}
      {span.input && (
        <>
          <h3>Input</h3>
          <pre>{span.input}</pre>
        </>
      )}
      {span.output && (
        <>
          <h3>Output</h3>
          <pre>{span.output}</pre>
        </>
      )}
      {Object.keys(span.attributes).length > 0 && (
        <>
          <h3>Attributes</h3>
          <table>
            <tbody>
              {Object.entries(span.attributes).map(([k, v]) => (
                <tr key={k}>
                  <th scope="row">{k}</th>
                  <td>{v}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      {Array.isArray(span.events) && span.events.length > 0 && (
        <>
          <h3>Events</h3>
          <pre>{JSON.stringify(span.events, null, 2)}</pre>
        </>
      )}
      {Array.isArray(span.links) && span.links.length > 0 && (
        <>
          <h3>Links</h3>
          <pre>{JSON.stringify(span.links, null, 2)}</pre>
        </>
      )}
    </aside>
  );
}

function Outcome(props: { traceId: string; success: boolean | null; outcome: string | null; onSaved: () => void }) {
  const [status, setStatus] = useState<string | null>(null);
  const save = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const s = String(f.get("success"));
    const body = {
      success: s === "" ? null : s === "true",
      outcome: String(f.get("outcome") ?? "").trim() || null,
    };
    const r = await api.PATCH("/dashboard/traces/{trace_id}", {
      params: { path: { trace_id: props.traceId } },
      body: body as never,
    });
    if (r.error !== undefined) setStatus(failure(r.response.status, r.error).message);
    else {
      setStatus("Saved.");
      props.onSaved();
    }
  };
  return (
    <form className="outcome" onSubmit={save} aria-label="Outcome">
      <label>
        Success
        <select name="success" defaultValue={props.success === null ? "" : String(props.success)}>
          <option value="">Not set</option>
          <option value="true">Succeeded</option>
          <option value="false">Did not succeed</option>
        </select>
      </label>
      <label>
        Outcome
        <input name="outcome" defaultValue={props.outcome ?? ""} maxLength={256} />
      </label>
      <button type="submit">Save outcome</button>
      {status && <span role="status">{status}</span>}
    </form>
  );
}

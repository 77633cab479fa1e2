import { useMemo, useState } from "react";
import { Link, useParams } from "react-router";
import { api, failure, unwrap, type Schemas } from "../api/client";
import { useLoad } from "../App";
import { diffLines } from "../diff";
import { count, ms, percent, usd, when } from "../format";

type Prompt = Schemas["Prompt"];

/** Every prompt (one row per name, its active version and version count). */
export function Prompts() {
  const [list, error, reload] = useLoad(async () => unwrap(await api.GET("/dashboard/prompts/")), []);
  const names = useMemo(() => {
    const by = new Map<string, Prompt[]>();
    for (const p of list ?? []) by.set(p.name, [...(by.get(p.name) ?? []), p]);
    return [...by.entries()];
  }, [list]);
  return (
    <section aria-labelledby="prompts-title">
      <h1 id="prompts-title">Prompts</h1>
      {error ? (
        <p className="error" role="alert">
          {error} <button onClick={reload}>Retry</button>
        </p>
      ) : !list ? (
        <p className="state" role="status">
          Loading prompts…
        </p>
      ) : names.length === 0 ? (
        <p className="state">No prompt yet: register a version with POST /api/v1/dashboard/prompts/.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Prompt</th>
              <th scope="col" className="num">
                Versions
              </th>
              <th scope="col" className="num">
                Active version
              </th>
              <th scope="col">Latest version created</th>
            </tr>
          </thead>
          <tbody>
            {names.map(([name, versions]) => (
              <tr key={name}>
                <td>
                  <Link to={`/prompts/${encodeURIComponent(name)}`}>{name}</Link>
                </td>
                <td className="num">{versions.length}</td>
                <td className="num">{versions.find((v) => v.is_active)?.version ?? "–"}</td>
                <td>{when(versions[0]?.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** One prompt: its versions (set one active), a text diff between two, and
 * the per-version comparison of their linked runs. */
export function PromptDetail() {
  const { name = "" } = useParams();
  const path = { params: { path: { name } } };
  const [versions, error, reload] = useLoad(
    async () => unwrap(await api.GET("/dashboard/prompts/{name}/versions", path)),
    [name],
  );
  const [compare, compareError, reloadCompare] = useLoad(
    async () => unwrap(await api.GET("/dashboard/prompts/{name}/compare", path)),
    [name],
  );
  const [pair, setPair] = useState<[number | null, number | null]>([null, null]);
  const [problem, setProblem] = useState<string | null>(null);

  if (error)
    return (
      <p className="error" role="alert">
        {error} <Link to="/prompts">Back to prompts</Link>
      </p>
    );
  if (!versions)
    return (
      <p className="state" role="status">
        Loading prompt…
      </p>
    );
  const older = pair[0] ?? versions[1]?.version ?? versions[0]?.version;
  const newer = pair[1] ?? versions[0]?.version;
  const a = versions.find((v) => v.version === older);
  const b = versions.find((v) => v.version === newer);

  const activate = async (version: number) => {
    const r = await api.POST("/dashboard/prompts/{name}/versions/{version}/activate", {
      params: { path: { name, version } },
    });
    if (r.error !== undefined) setProblem(failure(r.response.status, r.error).message);
    else {
      setProblem(null);
      reload();
      reloadCompare();
    }
  };

  return (
    <section aria-labelledby="prompt-title">
      <p>
        <Link to="/prompts">← Prompts</Link>
      </p>
      <h1 id="prompt-title">{name}</h1>
      {problem && (
        <p className="error" role="alert">
          {problem}
        </p>
      )}
      <h2>Versions compared on their runs</h2>
      {compareError ? (
        <p className="error" role="alert">
          {compareError}
        </p>
      ) : !compare ? (
        <p className="state" role="status">
          Loading the comparison…
        </p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col" className="num">
                Runs
              </th>
              <th scope="col" className="num">
                Success rate
              </th>
              <th scope="col" className="num">
                Avg duration
              </th>
              <th scope="col" className="num">
                p95 duration
              </th>
              <th scope="col" className="num">
                Avg cost / run
              </th>
              <th scope="col" className="num">
                Avg tokens / run
              </th>
              <th scope="col">Outcomes</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {compare.versions.map((v) => (
              <tr key={v.version}>
                <th scope="row">
                  v{v.version} {v.is_active && <span className="badge completed">active</span>}
                </th>
                <td className="num">{count(v.runs)}</td>
                <td className="num">{percent(v.success_rate)}</td>
                <td className="num">{ms(v.avg_duration_ms)}</td>
                <td className="num">{ms(v.p95_duration_ms)}</td>
                <td className="num">{usd(v.avg_cost_per_run)}</td>
                <td className="num">{count(v.avg_tokens_per_run == null ? null : Math.round(v.avg_tokens_per_run))}</td>
                <td>
                  {Object.entries(v.outcomes)
                    .map(([o, n]) => `${o}: ${n}`)
                    .join(", ") || "–"}
                </td>
                <td>
                  {!v.is_active && (
                    <button type="button" onClick={() => activate(v.version)}>
                      Make v{v.version} active
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Text of two versions</h2>
      <div className="toolbar">
        <label>
          From
          <select value={older} onChange={(e) => setPair([Number(e.target.value), newer ?? null])}>
            {versions.map((v) => (
              <option key={v.version} value={v.version}>
                v{v.version}
              </option>
            ))}
          </select>
        </label>
        <label>
          To
          <select value={newer} onChange={(e) => setPair([older ?? null, Number(e.target.value)])}>
            {versions.map((v) => (
              <option key={v.version} value={v.version}>
                v{v.version}
              </option>
            ))}
          </select>
        </label>
      </div>
      {a && b && (
        <pre className="diff" aria-label={`Changes from v${a.version} to v${b.version}`}>
          {diffLines(a.template_text, b.template_text).map((l, i) => (
            <div key={i} className={l.kind}>
              {l.kind === "added" ? "+ " : l.kind === "removed" ? "- " : "  "}
              {l.text}
            </div>
          ))}
        </pre>
      )}
      {b?.variables && b.variables.length > 0 && (
        <p className="muted">
          Variables of v{b.version}: {b.variables.join(", ")}
        </p>
      )}
    </section>
  );
}

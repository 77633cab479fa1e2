import { useState, type FormEvent } from "react";
import { api, failure, unwrap, type Schemas } from "../api/client";
import { useLoad } from "../App";
import { ms, when } from "../format";
import { currentOrgSlug } from "../org";
import { Loaded, Problem, ShownOnce } from "../components";

const EVENTS = ["trace.failed", "agent_run.completed", "alert.fired", "alert.resolved"] as const;
type Endpoint = Schemas["WebhookEndpoint"];

/** Settings → Webhooks: endpoints (the signing secret shown once), their
 * deliveries with every attempt, a test event, secret rotation, pause and
 * resume, delete. Managing endpoints needs the organization's admin role. */
export function Webhooks() {
  const [state, error, reload] = useLoad(async () => {
    const slug = await currentOrgSlug();
    const endpoints = unwrap(
      await api.GET("/org/{org_slug}/webhooks/endpoints", { params: { path: { org_slug: slug } } }),
    );
    return { slug, endpoints };
  }, []);
  const [secret, setSecret] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);

  const run = async (r: Promise<{ error?: unknown; response: Response; data?: unknown }>) => {
    const res = await r;
    if (res.error !== undefined) {
      setProblem(failure(res.response.status, res.error).message);
      return undefined;
    }
    setProblem(null);
    reload();
    return res.data;
  };

  const create = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    if (!state) return;
    const form = e.currentTarget;
    const f = new FormData(form);
    const event_types = EVENTS.filter((t) => f.get(t) === "on");
    const data = (await run(
      api.POST("/org/{org_slug}/webhooks/endpoints", {
        params: { path: { org_slug: state.slug } },
        body: { url: String(f.get("url") ?? ""), name: String(f.get("name") ?? ""), event_types } as never,
      }),
    )) as Schemas["WebhookEndpointWithSecret"] | undefined;
    if (data) {
      setSecret(data.secret);
      form.reset();
    }
  };

  const path = (id: string) => ({ params: { path: { org_slug: state?.slug ?? "", endpoint_id: id } } });

  return (
    <section aria-labelledby="webhooks-title">
      <h1 id="webhooks-title">Webhooks</h1>
      <form className="inline" onSubmit={create} aria-label="Add an endpoint">
        <label>
          URL
          <input name="url" type="url" required placeholder="https://hooks.example.com/agentvista" />
        </label>
        <label>
          Name
          <input name="name" maxLength={100} />
        </label>
        {EVENTS.map((t) => (
          <label key={t} className="check">
            <input type="checkbox" name={t} defaultChecked={t === "trace.failed"} /> {t}
          </label>
        ))}
        <button type="submit" disabled={!state}>
          Add endpoint
        </button>
      </form>
      <Problem message={problem} />
      <ShownOnce
        note="Signing secret: copy it now, it is shown only once."
        value={secret}
        testId="webhook-secret"
        onDone={() => setSecret(null)}
      />
      <Loaded
        data={state}
        error={error}
        loading="Loading endpoints…"
        empty={(s) => (s.endpoints.length ? null : "No endpoint yet.")}
      >
        {(state) =>
          state.endpoints.map((ep: Endpoint) => (
            <article key={ep.id} className="panel" aria-label={`Endpoint ${ep.name || ep.url}`}>
              <h2>{ep.name || ep.url}</h2>
              <p>
                <code>{ep.url}</code> · {ep.event_types.join(", ")} ·{" "}
                {ep.is_active ? "active" : `paused after ${ep.consecutive_failures} failures`}
              </p>
              <div className="toolbar">
                <button
                  type="button"
                  onClick={() => run(api.POST("/org/{org_slug}/webhooks/endpoints/{endpoint_id}/test", path(ep.id)))}
                >
                  Send a test event
                </button>
                <button
                  type="button"
                  onClick={async () => {
                    const d = (await run(
                      api.POST("/org/{org_slug}/webhooks/endpoints/{endpoint_id}/rotate-secret", path(ep.id)),
                    )) as { secret?: string } | undefined;
                    if (d?.secret) setSecret(d.secret);
                  }}
                >
                  Rotate the secret
                </button>
                <button
                  type="button"
                  onClick={() =>
                    run(
                      api.PATCH("/org/{org_slug}/webhooks/endpoints/{endpoint_id}", {
                        ...path(ep.id),
                        body: { is_active: !ep.is_active } as never,
                      }),
                    )
                  }
                >
                  {ep.is_active ? "Pause" : "Resume"}
                </button>
                <button
                  type="button"
                  onClick={() =>
                    window.confirm(`Delete the endpoint ${ep.url}?`) &&
                    run(api.DELETE("/org/{org_slug}/webhooks/endpoints/{endpoint_id}", path(ep.id)))
                  }
                >
                  Delete
                </button>
                <button
                  type="button"
                  aria-expanded={open === ep.id}
                  onClick={() => setOpen(open === ep.id ? null : ep.id)}
                >
                  Deliveries
                </button>
              </div>
              {open === ep.id && <Deliveries slug={state.slug} id={ep.id} />}
            </article>
          ))
        }
      </Loaded>
    </section>
  );
}

function Deliveries({ slug, id }: { slug: string; id: string }) {
  const [page, error] = useLoad(
    async () =>
      unwrap(
        await api.GET("/org/{org_slug}/webhooks/endpoints/{endpoint_id}/deliveries", {
          params: { path: { org_slug: slug, endpoint_id: id } },
        }),
      ),
    [slug, id],
  );
  return (
    <Loaded
      data={page}
      error={error}
      loading="Loading deliveries…"
      empty={(p) => (p.deliveries.length ? null : "No delivery yet.")}
    >
      {(page) => (
        <table>
          <thead>
            <tr>
              <th scope="col">Created</th>
              <th scope="col">Event</th>
              <th scope="col">Status</th>
              <th scope="col">Attempts</th>
            </tr>
          </thead>
          <tbody>
            {page.deliveries.map((d) => (
              <tr key={d.id}>
                <td>{when(d.created_at)}</td>
                <td>{d.event_type}</td>
                <td>{d.status}</td>
                <td>
                  {d.attempts.length === 0
                    ? `none yet${d.next_attempt_at ? ` (next ${when(d.next_attempt_at)})` : ""}`
                    : d.attempts
                        .map((a) => `#${a.attempt} ${a.status_code ?? a.error ?? "?"} in ${ms(a.duration_ms)}`)
                        .join("; ")}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Loaded>
  );
}

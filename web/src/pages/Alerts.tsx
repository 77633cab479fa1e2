import { useState, type FormEvent } from "react";
import { api, failure, unwrap, type Schemas } from "../api/client";
import { useLoad } from "../App";
import { when } from "../format";
import { Loaded, Problem, ShownOnce } from "../components";

type Alert = Schemas["Alert"];
const TYPES = ["failure_rate", "inactivity", "cost_threshold", "latency_threshold"] as const;
const THRESHOLD_HINT: Record<string, string> = {
  failure_rate: "a fraction 0-1 of runs with a success signal",
  inactivity: "hours without a run",
  cost_threshold: "US dollars per UTC day",
  latency_threshold: "p95 milliseconds",
};

/** Alerts: create (an agent, a type and threshold, a channel; a webhook
 * channel's signing secret shown once), edit, enable or disable, delete,
 * and each one's firing history with its notifications. */
export function Alerts() {
  const [alerts, error, reload] = useLoad(async () => unwrap(await api.GET("/alerts")), []);
  const [agents] = useLoad(async () => unwrap(await api.GET("/agents")), []);
  const [problem, setProblem] = useState<string | null>(null);
  const [type, setType] = useState<string>("failure_rate");
  const [history, setHistory] = useState<string | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [secret, setSecret] = useState<string | null>(null);

  const editingAlert = alerts?.find((a) => a.id === editing);

  const done = (r: { error?: unknown; response: Response }) => {
    if (r.error !== undefined) setProblem(failure(r.response.status, r.error).message);
    else setProblem(null);
    reload();
  };

  const create = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    const channel = String(f.get("channel"));
    const r = await api.POST("/alerts", {
      body: {
        agent_id: String(f.get("agent_id")),
        type,
        threshold: Number(f.get("threshold")),
        window_minutes: Number(f.get("window_minutes") || 60),
        cooldown_minutes: Number(f.get("cooldown_minutes") || 60),
        channel,
        webhook_url: channel === "email" ? undefined : String(f.get("webhook_url") ?? ""),
      } as never,
    });
    done(r);
    if (r.error === undefined) {
      form.reset();
      const created = r.data as { webhook_secret?: string | null } | undefined;
      if (created?.webhook_secret) setSecret(created.webhook_secret);
    }
  };

  return (
    <section aria-labelledby="alerts-title">
      <h1 id="alerts-title">Alerts</h1>
      <form className="filters" onSubmit={create} aria-label="Create an alert">
        <label>
          Agent
          <select name="agent_id" required>
            {(agents ?? []).map((a) => (
              <option key={a.id} value={a.id}>
                {a.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Type
          <select name="type" value={type} onChange={(e) => setType(e.target.value)}>
            {TYPES.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </label>
        <RuleFields type={type} window={60} cooldown={60} channel="email" />
        <div className="actions">
          <button type="submit" disabled={!agents || agents.length === 0}>
            Create alert
          </button>
        </div>
      </form>
      <Problem message={problem} />
      <ShownOnce
        note="The alert's webhook signing secret: copy it now, it is shown only once."
        value={secret}
        testId="alert-webhook-secret"
        onDone={() => setSecret(null)}
      />
      <Loaded data={alerts} error={error} loading="Loading alerts…" empty={(a) => (a.length ? null : "No alert yet.")}>
        {(alerts) => (
          <table>
            <thead>
              <tr>
                <th scope="col">Target</th>
                <th scope="col">Type</th>
                <th scope="col" className="num">
                  Threshold
                </th>
                <th scope="col">Channel</th>
                <th scope="col">State</th>
                <th scope="col">Last fired</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {alerts.map((a: Alert) => (
                <tr key={a.id}>
                  <td>{a.agent_name ?? a.target_service ?? "–"}</td>
                  <td>{a.type}</td>
                  <td className="num">{a.threshold ?? "–"}</td>
                  <td>{a.channel}</td>
                  <td>{a.is_active ? a.state : "disabled"}</td>
                  <td>{when(a.last_fired_at)}</td>
                  <td className="toolbar">
                    <button
                      type="button"
                      onClick={async () =>
                        done(
                          await api.PATCH("/alerts/{alert_id}", {
                            params: { path: { alert_id: a.id } },
                            body: { is_active: !a.is_active } as never,
                          }),
                        )
                      }
                    >
                      {a.is_active ? "Disable" : "Enable"}
                    </button>
                    <button
                      type="button"
                      aria-expanded={editing === a.id}
                      onClick={() => setEditing(editing === a.id ? null : a.id)}
                    >
                      Edit
                    </button>
                    <button
                      type="button"
                      aria-expanded={history === a.id}
                      onClick={() => setHistory(history === a.id ? null : a.id)}
                    >
                      History
                    </button>
                    <button
                      type="button"
                      onClick={async () =>
                        window.confirm("Delete this alert and its history?") &&
                        done(await api.DELETE("/alerts/{alert_id}", { params: { path: { alert_id: a.id } } }))
                      }
                    >
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
      {editingAlert && (
        <EditAlert
          alert={editingAlert}
          onSaved={(r) => {
            done(r);
            if (r.error === undefined) setEditing(null);
          }}
          onCancel={() => setEditing(null)}
        />
      )}
      {history && <History id={history} />}
    </section>
  );
}

/** The fields of a rule, with their starting values; the threshold is
 * left out for `composite` rules, minimum runs when not given. */
function RuleFields(props: {
  type: string;
  threshold?: number | null;
  window: number;
  minRuns?: number;
  cooldown: number;
  channel: string;
  webhookUrl?: string | null;
}) {
  return (
    <>
      {props.type !== "composite" && (
        <label>
          Threshold ({THRESHOLD_HINT[props.type]})
          <input
            name="threshold"
            type="number"
            step="any"
            min="0"
            required
            defaultValue={props.threshold ?? undefined}
          />
        </label>
      )}
      <label>
        Window (minutes)
        <input name="window_minutes" type="number" min={5} max={1440} defaultValue={props.window} />
      </label>
      {props.minRuns !== undefined && (
        <label>
          Minimum runs
          <input name="min_runs" type="number" min={1} max={10000} defaultValue={props.minRuns} />
        </label>
      )}
      <label>
        Cooldown (minutes)
        <input name="cooldown_minutes" type="number" min={0} max={10080} defaultValue={props.cooldown} />
      </label>
      <label>
        Channel
        <select name="channel" defaultValue={props.channel}>
          <option value="email">email</option>
          <option value="webhook">webhook</option>
          <option value="both">both</option>
        </select>
      </label>
      <label>
        Webhook URL (webhook, both)
        <input name="webhook_url" type="url" defaultValue={props.webhookUrl ?? ""} />
      </label>
    </>
  );
}

/** Edit an alert's rule: the fields sent are merged into it (PATCH). */
function EditAlert(props: {
  alert: Alert;
  onSaved: (r: { error?: unknown; response: Response }) => void;
  onCancel: () => void;
}) {
  const a = props.alert;
  const save = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const channel = String(f.get("channel"));
    const num = (name: string) => (f.get(name) === "" || f.get(name) === null ? undefined : Number(f.get(name)));
    const body: Record<string, unknown> = {
      threshold: num("threshold"),
      window_minutes: num("window_minutes"),
      min_runs: num("min_runs"),
      cooldown_minutes: num("cooldown_minutes"),
      channel,
      webhook_url: channel === "email" ? null : String(f.get("webhook_url") ?? ""),
    };
    if (a.type === "composite") delete body.threshold;
    props.onSaved(await api.PATCH("/alerts/{alert_id}", { params: { path: { alert_id: a.id } }, body: body as never }));
  };
  return (
    <form className="filters" onSubmit={save} aria-label="Edit the alert">
      <h2>
        Edit: {a.agent_name ?? a.target_service ?? "–"} · {a.type}
      </h2>
      <RuleFields
        type={a.type}
        threshold={a.threshold}
        window={a.window_minutes}
        minRuns={a.min_runs}
        cooldown={a.cooldown_minutes}
        channel={a.channel}
        webhookUrl={a.webhook_url}
      />
      <div className="actions">
        <button type="submit">Save alert</button>
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function History({ id }: { id: string }) {
  const [events, error] = useLoad(
    async () => unwrap(await api.GET("/alerts/{alert_id}/events", { params: { path: { alert_id: id } } })),
    [id],
  );
  return (
    <Loaded
      data={events}
      error={error}
      loading="Loading history…"
      empty={(e) => (e.length ? null : "This alert has not fired.")}
    >
      {(events) => (
        <ul className="logs" aria-label="Firing history">
          {events.map((e) => (
            <li key={e.id}>
              {when(e.at)} — {e.kind}: value {e.value ?? "–"} against {e.threshold ?? "–"} ({e.notifications.length}{" "}
              notifications)
            </li>
          ))}
        </ul>
      )}
    </Loaded>
  );
}

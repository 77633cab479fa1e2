import { useState, type FormEvent } from "react";
import { api, failure, unwrap } from "../api/client";
import { useLoad } from "../App";
import { ago, when } from "../format";
import { Loaded, Problem, ShownOnce } from "../components";

/** Settings → API keys: create (the raw key shown once), list, revoke. */
export function Keys() {
  const [page, error, reload] = useLoad(async () => unwrap(await api.GET("/me/api-keys/")), []);
  const [created, setCreated] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);

  const create = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const scopes = ["read", "write"].filter((s) => f.get(s) === "on");
    const r = await api.POST("/me/api-keys/", { body: { name: String(f.get("name") ?? ""), scopes } as never });
    if (r.error !== undefined || !r.data) {
      setProblem(failure(r.response.status, r.error).message);
      return;
    }
    setProblem(null);
    setCreated(r.data.key);
    e.currentTarget?.reset();
    reload();
  };

  const revoke = async (id: string, name: string) => {
    if (!window.confirm(`Revoke the key "${name}"? Clients using it stop working within seconds.`)) return;
    const r = await api.DELETE("/me/api-keys/{key_id}/", { params: { path: { key_id: id } } });
    if (r.error !== undefined) setProblem(failure(r.response.status, r.error).message);
    reload();
  };

  return (
    <section aria-labelledby="keys-title">
      <h1 id="keys-title">API keys</h1>
      <form className="inline" onSubmit={create} aria-label="Create an API key">
        <label>
          Name
          <input name="name" required maxLength={100} placeholder="production SDK" />
        </label>
        <label className="check">
          <input type="checkbox" name="write" defaultChecked /> write (send traces)
        </label>
        <label className="check">
          <input type="checkbox" name="read" /> read (dashboard API)
        </label>
        <button type="submit">Create key</button>
      </form>
      <Problem message={problem} />
      <ShownOnce
        note="Copy this key now: it is shown only once."
        value={created}
        testId="new-key"
        onDone={() => setCreated(null)}
      />
      <Loaded
        data={page}
        error={error}
        loading="Loading keys…"
        empty={(p) => (p.results.length ? null : "No API key yet.")}
      >
        {(page) => (
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Key</th>
                <th scope="col">Scopes</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col">State</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {page.results.map((k) => (
                <tr key={k.id}>
                  <td>{k.name}</td>
                  <td>
                    <code>{k.prefix}…</code>
                  </td>
                  <td>{k.scopes.join(", ")}</td>
                  <td>{when(k.created_at)}</td>
                  <td>{ago(k.last_used_at)}</td>
                  <td>{k.is_active ? "active" : "revoked"}</td>
                  <td>
                    {k.is_active && (
                      <button type="button" onClick={() => revoke(k.id, k.name)}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
    </section>
  );
}

import { useState, type FormEvent } from "react";
import { api, failure, unwrap } from "../api/client";
import { useLoad } from "../App";
import { when } from "../format";
import { currentOrgSlug } from "../org";
import { Loaded, Problem } from "../components";

/** Settings → Members: the organization's members and roles (admins add,
 * change roles and remove). */
export function Members() {
  const [state, error, reload] = useLoad(async () => {
    const slug = await currentOrgSlug();
    const members = unwrap(await api.GET("/org/{org_slug}/members", { params: { path: { org_slug: slug } } }));
    return { slug, members };
  }, []);
  const [problem, setProblem] = useState<string | null>(null);
  const done = (r: { error?: unknown; response: Response }) => {
    setProblem(r.error !== undefined ? failure(r.response.status, r.error).message : null);
    reload();
  };

  const add = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    if (!state) return;
    const form = e.currentTarget;
    const f = new FormData(form);
    const r = await api.POST("/org/{org_slug}/members", {
      params: { path: { org_slug: state.slug } },
      body: { email: String(f.get("email") ?? ""), role: String(f.get("role")) } as never,
    });
    done(r);
    if (r.error === undefined) form.reset();
  };

  return (
    <section aria-labelledby="members-title">
      <h1 id="members-title">Members</h1>
      <form className="inline" onSubmit={add} aria-label="Add a member">
        <label>
          Email of a registered user
          <input name="email" type="email" required />
        </label>
        <label>
          Role
          <select name="role" defaultValue="member">
            <option value="member">member</option>
            <option value="admin">admin</option>
          </select>
        </label>
        <button type="submit" disabled={!state}>
          Add member
        </button>
      </form>
      <Problem message={problem} />
      <Loaded data={state} error={error} loading="Loading members…">
        {(state) => (
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                <th scope="col">Joined</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {state.members.map((m) => (
                <tr key={m.user_id}>
                  <td>{m.name}</td>
                  <td>{m.email}</td>
                  <td>
                    <select
                      aria-label={`Role of ${m.email}`}
                      value={m.role}
                      onChange={async (e) =>
                        done(
                          await api.PATCH("/org/{org_slug}/members/{user_id}", {
                            params: { path: { org_slug: state.slug, user_id: m.user_id } },
                            body: { role: e.target.value } as never,
                          }),
                        )
                      }
                    >
                      <option value="member">member</option>
                      <option value="admin">admin</option>
                    </select>
                  </td>
                  <td>{when(m.joined_at)}</td>
                  <td>
                    <button
                      type="button"
                      onClick={async () =>
                        window.confirm(`Remove ${m.email} from the organization?`) &&
                        done(
                          await api.DELETE("/org/{org_slug}/members/{user_id}", {
                            params: { path: { org_slug: state.slug, user_id: m.user_id } },
                          }),
                        )
                      }
                    >
                      Remove
                    </button>
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

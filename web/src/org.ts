import { api } from "./api/client";

/** The slug of the organization the session acts in (for `/org/{slug}`
 * routes). */
export async function currentOrgSlug(): Promise<string> {
  const r = await api.GET("/auth/me");
  const me = r.data;
  const org = me?.organizations.find((o) => o.id === me.current_organization_id) ?? me?.organizations[0];
  if (!org) throw new Error("No organization found for this session.");
  return org.slug;
}

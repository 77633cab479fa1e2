import { api, unwrap } from "../api/client";
import { useLoad } from "../App";
import { count, percent, when } from "../format";
import { currentOrgSlug } from "../org";

/** Settings → Plan: the organization's plan, and the spans metered this
 * month against its limit. */
export function Plan() {
  const [usage, error, reload] = useLoad(async () => {
    const slug = await currentOrgSlug();
    return unwrap(await api.GET("/org/{org_slug}/usage", { params: { path: { org_slug: slug } } }));
  }, []);
  if (error)
    return (
      <p className="error" role="alert">
        {error} <button onClick={reload}>Retry</button>
      </p>
    );
  if (!usage)
    return (
      <p className="state" role="status">
        Loading the plan…
      </p>
    );
  const used = usage.spans_used ?? null;
  const share = used === null || usage.monthly_span_limit === 0 ? 0 : Math.min(used / usage.monthly_span_limit, 1);
  return (
    <section aria-labelledby="plan-title">
      <h1 id="plan-title">Plan and usage</h1>
      <dl className="facts">
        <dt>Organization</dt>
        <dd>{usage.org_slug}</dd>
        <dt>Plan</dt>
        <dd>{usage.plan}</dd>
        <dt>Spans this month ({usage.month})</dt>
        <dd>
          {used === null ? "unavailable right now" : count(used)} of {count(usage.monthly_span_limit)} (
          {percent(usage.percent_used)})
        </dd>
        <dt>Resets</dt>
        <dd>{when(usage.resets_at)}</dd>
        <dt>Retention</dt>
        <dd>{usage.retention_days} days</dd>
      </dl>
      <div
        className="meter"
        role="meter"
        aria-label="Spans used this month"
        aria-valuemin={0}
        aria-valuemax={usage.monthly_span_limit}
        aria-valuenow={used ?? 0}
      >
        <div style={{ width: `${share * 100}%` }} />
      </div>
      {share >= 1 && (
        <p className="error" role="alert">
          The monthly limit is reached: ingestion answers 429 until {when(usage.resets_at)}.
        </p>
      )}
    </section>
  );
}

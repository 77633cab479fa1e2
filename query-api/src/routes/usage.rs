//! `/org/{org_slug}/usage`: the organization's plan, its monthly span limit
//! and the spans metered so far this month (what the dashboard's plan page
//! shows). Any member reads it; another organization's is a 404.

use crate::auth::Principal;
use crate::error::{AppResult, Json};
use crate::store::accounts;
use crate::views::usage::Usage;
use crate::AppState;
use agentvista_shared::error::{ApiError, ErrorBody};
use agentvista_shared::plan::Plan;
use agentvista_shared::time_fmt;
use axum::extract::{Path, State};
use time::OffsetDateTime;

/// The first instant of the month after `now` (UTC).
fn next_month(now: OffsetDateTime) -> OffsetDateTime {
    let (y, m) = match now.month() {
        time::Month::December => (now.year() + 1, time::Month::January),
        m => (now.year(), m.next()),
    };
    time::Date::from_calendar_date(y, m, 1)
        .map(|d| d.midnight().assume_utc())
        .unwrap_or(now)
}

/// The plan, the monthly span limit and this month's count so far.
#[utoipa::path(operation_id = "org_usage", get, path = "/org/{org_slug}/usage", tag = "members",
    params(("org_slug" = String, Path, description = "The organization's slug")),
    responses((status = 200, body = Usage), (status = 404, body = ErrorBody)))]
pub async fn usage(
    State(state): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> AppResult<Json<Usage>> {
    let m = principal.member_of(&state, &slug).await?.reader()?;
    let (plan_name, limit) = accounts::plan_of(&state.0.pg, m.org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Organization"))?;
    let plan = Plan::parse(&plan_name).unwrap_or(Plan::Free);
    let limit = limit.map_or(plan.monthly_span_limit(), |l| l.max(0) as u64);
    let now = OffsetDateTime::now_utc();
    let used = accounts::spans_this_month(&state.0.redis, m.org_id, now).await;
    Ok(Json(Usage {
        org_slug: m.slug,
        plan: plan.as_str().to_string(),
        monthly_span_limit: limit,
        spans_used: used,
        percent_used: used.and_then(|u| crate::views::percent(u, limit)),
        month: time_fmt::month_key(now),
        resets_at: time_fmt::format(next_month(now)),
        retention_days: plan.retention_days(),
    }))
}

#[cfg(test)]
mod tests {
    use super::next_month;
    use time::macros::datetime;

    #[test]
    fn the_count_resets_on_the_first_of_next_month() {
        assert_eq!(
            next_month(datetime!(2026-11-30 23:59:59 UTC)),
            datetime!(2026-12-01 0:00 UTC)
        );
        assert_eq!(
            next_month(datetime!(2026-12-15 12:00 UTC)),
            datetime!(2027-01-01 0:00 UTC)
        );
    }
}

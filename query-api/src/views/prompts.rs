//! Prompt versions, their per-version comparison and usage links.

use super::{cost_total, fmt_us, percent, rfc3339, rounded_ms, usd_number};
use crate::store::prompt_stats::VersionTotals;
use crate::store::prompts::StoredPrompt;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// A prompt template version (every prompt route answers with these).
#[derive(Debug, Serialize, ToSchema)]
pub struct Prompt {
    pub id: Uuid,
    pub name: String,
    pub version: i32,
    pub template_text: String,
    pub description: Option<String>,
    /// Whether this version is the name's current default (the one a fetch
    /// without `version` returns). A new version becomes active.
    pub is_active: bool,
    pub created_at: String,
    /// The template's `{{variable}}` names, in order of first use.
    pub variables: Vec<String>,
}

impl From<StoredPrompt> for Prompt {
    fn from(p: StoredPrompt) -> Self {
        Prompt {
            variables: p.variables.unwrap_or_else(|| variables(&p.template_text)),
            id: p.id,
            name: p.name,
            version: p.version,
            template_text: p.template_text,
            description: p.description,
            is_active: p.is_active,
            created_at: rfc3339(p.created_at),
        }
    }
}

/// Longest variable name listed.
const MAX_VARIABLE_CHARS: usize = 128;

/// The `{{ name }}` placeholders of a template, in order of first use, each
/// once: a name starts with a letter or `_` and goes on with letters,
/// digits, `_`, `.` or `-`; spaces inside the braces are allowed. A `{{`
/// that does not open a name (`{{ {{x}} }}`) is passed over, so that a name
/// nested in it is still found.
///
/// One pass: each `{{` is tried once and a try reads at most the spaces
/// after it and [`MAX_VARIABLE_CHARS`] + 1 name characters, never reaching
/// past the next `{` (no name or space holds one), so the whole scan is
/// linear in the template's length.
pub fn variables(template: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut from = 0;
    while let Some(at) = template[from..].find("{{") {
        let open = from + at;
        if let Some(name) = placeholder(&template[open + 2..]) {
            if seen.insert(name) {
                out.push(name.to_string());
            }
        }
        from = open + 2;
    }
    out
}

/// The name of the placeholder whose `{{` comes just before `rest`, if it
/// is one: spaces, a name, spaces, `}}`.
fn placeholder(rest: &str) -> Option<&str> {
    let trimmed = rest.trim_start();
    let skipped = rest.len() - trimmed.len();
    let mut chars = trimmed.char_indices();
    let first = chars.next()?.1;
    if !(first.is_alphabetic() || first == '_') {
        return None;
    }
    let mut end = first.len_utf8();
    let mut count = 1;
    for (i, c) in chars {
        if !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-')) {
            break;
        }
        count += 1;
        if count > MAX_VARIABLE_CHARS {
            return None;
        }
        end = i + c.len_utf8();
    }
    let after = trimmed[end..].trim_start();
    after
        .starts_with("}}")
        .then(|| &rest[skipped..skipped + end])
}

/// `GET /dashboard/prompts/{name}/compare`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptComparison {
    pub name: String,
    /// The window compared (RFC 3339), null for an open end: all time by
    /// default.
    pub start: Option<String>,
    pub end: Option<String>,
    /// One entry per registered version, newest first.
    pub versions: Vec<VersionComparison>,
}

/// One version's figures over the runs linked to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionComparison {
    pub version: i32,
    pub is_active: bool,
    pub description: Option<String>,
    pub created_at: String,
    /// Linked runs (each run once, however many times it was linked).
    pub runs: u64,
    /// Percent (one decimal) of the runs with a success signal that
    /// succeeded; null without such runs.
    pub success_rate: Option<f64>,
    pub failure_rate: Option<f64>,
    /// Percent of runs whose status is `failed`.
    pub error_rate: Option<f64>,
    pub avg_duration_ms: Option<i64>,
    pub p50_duration_ms: Option<i64>,
    pub p95_duration_ms: Option<i64>,
    /// US dollars; null when no run carries a cost.
    pub total_cost: Option<f64>,
    /// Over the runs that carry a cost.
    pub avg_cost_per_run: Option<f64>,
    pub total_tokens: i64,
    pub avg_tokens_per_run: Option<f64>,
    /// Runs by outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// Start of the earliest and the latest linked run; null without runs.
    pub first_used_at: Option<String>,
    pub last_used_at: Option<String>,
}

impl VersionComparison {
    pub fn build(p: &StoredPrompt, t: Option<&VersionTotals>) -> Self {
        VersionComparison {
            version: p.version,
            is_active: p.is_active,
            description: p.description.clone(),
            created_at: rfc3339(p.created_at),
            runs: t.map_or(0, |t| t.runs),
            success_rate: t.and_then(|t| percent(t.successful, t.with_signal)),
            failure_rate: t.and_then(|t| percent(t.unsuccessful, t.with_signal)),
            error_rate: t.and_then(|t| percent(t.failed_status, t.runs)),
            avg_duration_ms: rounded_ms(
                t.filter(|t| t.duration_runs > 0)
                    .map(|t| t.duration_sum as f64 / t.duration_runs as f64),
            ),
            p50_duration_ms: rounded_ms(
                t.filter(|t| t.duration_runs > 0)
                    .and_then(|t| t.durations.first().copied()),
            ),
            p95_duration_ms: rounded_ms(
                t.filter(|t| t.duration_runs > 0)
                    .and_then(|t| t.durations.get(1).copied()),
            ),
            total_cost: t.and_then(|t| cost_total(t.cost_runs, t.cost_nanos)),
            avg_cost_per_run: t
                .filter(|t| t.cost_runs > 0)
                .map(|t| usd_number(t.cost_nanos / i128::from(t.cost_runs))),
            total_tokens: t.map_or(0, |t| t.tokens),
            avg_tokens_per_run: t
                .filter(|t| t.runs > 0)
                .map(|t| ((t.tokens as f64 / t.runs as f64) * 10.0).round() / 10.0),
            outcomes: t
                .map(|t| t.outcomes.iter().cloned().collect())
                .unwrap_or_default(),
            first_used_at: t.filter(|t| t.runs > 0).map(|t| fmt_us(t.first_us)),
            last_used_at: t.filter(|t| t.runs > 0).map(|t| fmt_us(t.last_us)),
        }
    }
}

/// `POST /dashboard/prompts/usage`: the link as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptUsage {
    pub prompt_name: String,
    pub prompt_version: u32,
    pub trace_id: Uuid,
    pub span_id: Option<Uuid>,
}

#[cfg(test)]
mod tests {
    use super::{variables, MAX_VARIABLE_CHARS};

    #[test]
    fn variables_are_the_named_placeholders_once_each() {
        assert_eq!(
            variables("Classify {{inquiry}} for {{ customer.name }}; again {{inquiry}}"),
            vec!["inquiry", "customer.name"]
        );
        assert!(variables("no placeholders, {single} braces, {{ }} {{1x}} {{a b}}").is_empty());
        assert_eq!(variables("{{ {{inner}} }}"), vec!["inner"]);
        assert_eq!(variables("unclosed {{name"), Vec::<String>::new());
        assert_eq!(variables("{{ä_1-x}}"), vec!["ä_1-x"]);
        assert_eq!(variables("{{a}b}} {{ b }}}"), vec!["b"]);
        let long = "x".repeat(MAX_VARIABLE_CHARS);
        assert_eq!(variables(&format!("{{{{{long}}}}}")), vec![long.clone()]);
        assert!(variables(&format!("{{{{{long}y}}}}")).is_empty());
    }

    #[test]
    fn a_pathological_template_is_scanned_in_linear_time() {
        // 50,000 openings and one close: each `{{` is tried once and fails
        // at the next `{`. Quadratic, this took seconds.
        let t = format!("{}}}}}", "{{".repeat(49_999));
        let started = std::time::Instant::now();
        assert!(variables(&t).is_empty());
        let spaces = format!("{{{{{}}}}}", " ".repeat(1_000_000));
        assert!(variables(&spaces).is_empty());
        let names = "{{a".repeat(100_000);
        assert!(variables(&names).is_empty());
        // Generous for a loaded machine; the scan takes about a millisecond.
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
}

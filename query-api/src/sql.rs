//! A small builder for parameterized ClickHouse `WHERE` clauses: every value
//! is bound, never spliced into the SQL text.

use agentvista_shared::error::ApiError;
use agentvista_shared::{time_fmt, window};

#[derive(Debug, Clone)]
pub enum Bind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    /// An array of strings (`[...]`: for `IN ?` and `has(?, x)`).
    Strs(Vec<String>),
    /// An array of unsigned integers.
    UInts(Vec<u64>),
    /// An array of (unsigned, unsigned) tuples.
    Pairs(Vec<(u64, u64)>),
}

#[derive(Debug, Default, Clone)]
pub struct Filter {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

impl Filter {
    /// Start with the tenant condition every query must carry.
    pub fn org(org_id: uuid::Uuid) -> Self {
        let mut f = Filter::default();
        f.push("org_id = toUUID(?)", [Bind::Str(org_id.to_string())]);
        f
    }

    pub fn push(&mut self, clause: &str, binds: impl IntoIterator<Item = Bind>) {
        self.clauses.push(clause.to_string());
        self.binds.extend(binds);
    }

    /// A subquery condition: `template` with `{}` where the subquery's
    /// `WHERE` goes; the subquery's values follow this filter's.
    pub fn push_subquery(&mut self, template: &str, sub: &Filter) {
        self.clauses.push(template.replace("{}", &sub.sql()));
        self.binds.extend(sub.binds.iter().cloned());
    }

    /// Append values for placeholders that the caller adds to the SQL text
    /// after this filter's own clauses (a subquery, a keyset condition).
    pub fn bind_more(&mut self, binds: impl IntoIterator<Item = Bind>) {
        self.binds.extend(binds);
    }

    pub fn sql(&self) -> String {
        self.clauses.join(" AND ")
    }

    pub fn binds(&self) -> &[Bind] {
        &self.binds
    }

    /// Bind this filter's values onto `q` in order.
    pub fn apply(&self, mut q: clickhouse::query::Query) -> clickhouse::query::Query {
        for b in &self.binds {
            q = match b {
                Bind::Str(s) => q.bind(s.as_str()),
                Bind::Int(i) => q.bind(*i),
                Bind::Float(f) => q.bind(*f),
                Bind::Bool(b) => q.bind(*b),
                Bind::Null => q.bind(None::<String>),
                Bind::Strs(v) => q.bind(v),
                Bind::UInts(v) => q.bind(v),
                Bind::Pairs(v) => q.bind(v),
            };
        }
        q
    }
}

/// An RFC 3339 query parameter as microseconds, or a 400 naming it (also
/// outside the queryable range, 1970 to 2100: see `shared::window`).
pub fn time_param(name: &str, v: Option<&str>) -> Result<Option<i64>, ApiError> {
    match v {
        None | Some("") => Ok(None),
        Some(s) => {
            let t = time_fmt::parse(s).ok_or_else(|| {
                ApiError::invalid_field(
                    name,
                    format!("{s:?} is not an ISO 8601 timestamp with a time zone"),
                )
            })?;
            window::check_query_us(t.unix_timestamp_nanos() / 1_000)
                .map(Some)
                .map_err(|m| ApiError::invalid_field(name, m))
        }
    }
}

/// A UUID query parameter, or a 400 naming it.
pub fn uuid_param(name: &str, v: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(v.trim())
        .map_err(|_| ApiError::invalid_field(name, format!("{v:?} is not a UUID")))
}

/// Check that `v` is one of `allowed`.
pub fn enum_param<'a>(name: &str, v: &'a str, allowed: &[&str]) -> Result<&'a str, ApiError> {
    if allowed.contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::invalid_field(
            name,
            format!(
                "unknown value {v:?}, expected one of {}",
                allowed.join(", ")
            ),
        ))
    }
}

/// Search terms: whitespace-separated, at most 10, each at most 100 chars.
/// `text` as a literal inside a `LIKE` pattern: `%`, `_` and `\\` escaped.
pub fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub fn terms(name: &str, q: &str) -> Result<Vec<String>, ApiError> {
    let terms: Vec<String> = q.split_whitespace().map(str::to_string).collect();
    if terms.len() > 10 || terms.iter().any(|t| t.chars().count() > 100) {
        return Err(ApiError::invalid_field(
            name,
            "at most 10 terms of at most 100 characters",
        ));
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::like_escape;

    #[test]
    fn like_patterns_take_terms_literally() {
        assert_eq!(like_escape("plain"), "plain");
        assert_eq!(like_escape("100%_x\\y"), "100\\%\\_x\\\\y");
        assert_eq!(like_escape("naïve"), "naïve");
    }
}

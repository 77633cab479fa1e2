//! Model prices and cost computation.
//!
//! A cost sent by the client always wins; otherwise the cost of an LLM span
//! is computed from its token counts and the price of its model: the
//! organization's override when it has one, else the table shipped in
//! `shared/prices.json`. Input tokens include cached input tokens (the
//! OpenAI and OpenTelemetry convention); cached ones are billed at the cached
//! price. All arithmetic is in integer nano-dollars.

use crate::money;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Nano-dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub input: i64,
    pub output: i64,
    pub cached_input: i64,
}

impl Price {
    /// From USD-per-million decimal strings.
    pub fn from_usd(input: &str, output: &str, cached_input: &str) -> Result<Price, &'static str> {
        Ok(Price {
            input: money::parse_usd(input)?,
            output: money::parse_usd(output)?,
            cached_input: money::parse_usd(cached_input)?,
        })
    }

    /// Cost in nano-dollars, rounded to the nearest nano-dollar, at most
    /// [`money::MAX_TOTAL_NANOS`].
    pub fn cost(&self, input: i64, output: i64, cached: i64) -> i64 {
        let cached = cached.clamp(0, input.max(0));
        let uncached = input.max(0) - cached;
        let total = uncached as i128 * self.input as i128
            + cached as i128 * self.cached_input as i128
            + output.max(0) as i128 * self.output as i128;
        ((total + 500_000) / 1_000_000).min(money::MAX_TOTAL_NANOS as i128) as i64
    }
}

/// The Redis hash of an organization's overrides: field = normalized model,
/// value = a JSON [`Price`].
pub fn overrides_redis_key(org_id: uuid::Uuid) -> String {
    format!("av:prices:{org_id}")
}

static TABLE: OnceLock<HashMap<String, Price>> = OnceLock::new();

/// The shipped price table, keyed by normalized model name.
pub fn table() -> &'static HashMap<String, Price> {
    TABLE.get_or_init(|| {
        let raw: HashMap<String, serde_json::Value> =
            serde_json::from_str(include_str!("../prices.json"))
                .expect("prices.json is valid JSON");
        raw.into_iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .map(|(k, v)| {
                let p: [String; 3] = serde_json::from_value(v).expect("a price is three strings");
                let price = Price::from_usd(&p[0], &p[1], &p[2]).expect("prices are decimals");
                (k, price)
            })
            .collect()
    })
}

/// Normalize a model name: lowercase, no provider prefix (`openai/`,
/// `models/`, `anthropic.`), no dated snapshot or `-latest` suffix.
pub fn normalize_model(model: &str) -> String {
    let mut m = model.trim().to_ascii_lowercase();
    if let Some(i) = m.rfind('/') {
        m = m[i + 1..].to_string();
    }
    for prefix in ["anthropic.", "openai.", "us.anthropic.", "eu.anthropic."] {
        if let Some(rest) = m.strip_prefix(prefix) {
            m = rest.to_string();
        }
    }
    if let Some(i) = m.find('@') {
        m.truncate(i);
    }
    // Bedrock-style version tail: `-v1:0`.
    if let Some(i) = m.rfind("-v") {
        if m[i + 2..].chars().all(|c| c.is_ascii_digit() || c == ':') && i + 2 < m.len() {
            m.truncate(i);
        }
    }
    for suffix in ["-latest", "-preview"] {
        if let Some(rest) = m.strip_suffix(suffix) {
            m = rest.to_string();
        }
    }
    // `-2024-08-06` or `-20241022`.
    let bytes = m.as_bytes();
    if m.len() > 11 && bytes[m.len() - 11] == b'-' && is_date(&m[m.len() - 10..], true) {
        m.truncate(m.len() - 11);
    } else if m.len() > 9 && bytes[m.len() - 9] == b'-' && is_date(&m[m.len() - 8..], false) {
        m.truncate(m.len() - 9);
    }
    m
}

fn is_date(s: &str, dashed: bool) -> bool {
    if dashed {
        s.len() == 10
            && s.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            })
    } else {
        s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) && s.starts_with("20")
    }
}

/// The price of `model`: an exact match of the normalized name in
/// `overrides` then the shipped table, else the longest table key that the
/// name starts with followed by `-` (so `gpt-4o-mini-audio` prices as
/// `gpt-4o-mini`, never as `gpt-4o`'s unrelated sibling).
pub fn lookup(model: &str, overrides: &HashMap<String, Price>) -> Option<Price> {
    let m = normalize_model(model);
    if let Some(p) = overrides.get(&m).or_else(|| table().get(&m)) {
        return Some(*p);
    }
    table()
        .iter()
        .filter(|(k, _)| m.starts_with(k.as_str()) && m.as_bytes().get(k.len()) == Some(&b'-'))
        .max_by_key(|(k, _)| k.len())
        .map(|(_, p)| *p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_normalize() {
        for (input, want) in [
            ("gpt-4o-2024-08-06", "gpt-4o"),
            ("GPT-4o-mini", "gpt-4o-mini"),
            ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
            ("claude-sonnet-4-20250514", "claude-sonnet-4"),
            ("openai/gpt-4.1", "gpt-4.1"),
            ("models/gemini-1.5-pro", "gemini-1.5-pro"),
            ("anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku"),
            ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
            ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),
            ("o3-mini", "o3-mini"),
        ] {
            assert_eq!(normalize_model(input), want, "{input}");
        }
    }

    #[test]
    fn lookup_prefers_exact_then_longest_prefix() {
        let none = HashMap::new();
        assert_eq!(
            lookup("gpt-4o-2024-08-06", &none),
            table().get("gpt-4o").copied()
        );
        assert_eq!(
            lookup("gpt-4o-mini-2024-07-18", &none),
            table().get("gpt-4o-mini").copied()
        );
        assert_eq!(
            lookup("gpt-4o-mini-audio", &none),
            table().get("gpt-4o-mini").copied()
        );
        assert_eq!(lookup("my-own-model", &none), None);
        let mut overrides = HashMap::new();
        let p = Price::from_usd("1", "2", "0.5").unwrap();
        overrides.insert("gpt-4o".to_string(), p);
        assert_eq!(lookup("gpt-4o-2024-05-13", &overrides), Some(p));
    }

    #[test]
    fn costs_are_exact() {
        let gpt4o = table()["gpt-4o"];
        // 800 in at $2.50/M + 120 out at $10/M = 0.002 + 0.0012
        assert_eq!(gpt4o.cost(800, 120, 0), 3_200_000);
        // 1000 in of which 400 cached at $1.25/M: 600*2.5 + 400*1.25 = 2000 µ$
        assert_eq!(gpt4o.cost(1000, 0, 400), 2_000_000);
        // cached larger than input is clamped
        assert_eq!(gpt4o.cost(100, 0, 1000), 125_000);
        let mini = table()["gpt-4o-mini"];
        assert_eq!(mini.cost(1, 0, 0), 150);
    }
}

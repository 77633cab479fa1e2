//! Prompt references: the rules a prompt name and version follow, and the
//! span attributes that link a run to a prompt version at ingestion.
//!
//! One definition for every path that creates a link: the query API's
//! routes (`POST /dashboard/prompts/`, `.../usage`) check names and
//! versions with [`check_name`] and [`MAX_VERSION`]; the gateway turns the
//! SDK batch's `prompt_name` / `prompt_version` span fields into the
//! [`NAME_ATTR`] / [`VERSION_ATTR`] attributes; the writer derives a link
//! from any span's attributes with [`reference`] (OTLP spans included, and
//! Langfuse's attribute names, so instrumentation written for Langfuse keeps
//! working). Pure, and fuzzed with the other translators.

/// The attribute naming the prompt a span used.
pub const NAME_ATTR: &str = "agentvista.prompt.name";
/// The attribute naming its version (an integer, as a string or a number).
pub const VERSION_ATTR: &str = "agentvista.prompt.version";
/// Langfuse's names for the same two, accepted as well.
pub const LANGFUSE_NAME_ATTR: &str = "langfuse.prompt.name";
pub const LANGFUSE_VERSION_ATTR: &str = "langfuse.prompt.version";

/// Longest prompt name, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Versions are 1..=MAX_VERSION (PostgreSQL's `INTEGER`).
pub const MAX_VERSION: u32 = i32::MAX as u32;
/// Names that would shadow a route under `/dashboard/prompts/`.
pub const RESERVED_NAMES: &[&str] = &["usage"];

/// Why a prompt name is refused, if it is: 1 to [`MAX_NAME_CHARS`]
/// characters, no control characters, no `/`, no leading or trailing
/// whitespace, not a reserved word.
pub fn check_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if chars == 0 {
        return Err("must not be empty".into());
    }
    if chars > MAX_NAME_CHARS {
        return Err(format!("must be at most {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(|c| c.is_control() || c == '/') {
        return Err("must not contain '/' or control characters".into());
    }
    if name.trim() != name {
        return Err("must not start or end with whitespace".into());
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(format!("{name:?} is reserved"));
    }
    Ok(())
}

/// A version number as an attribute carries it (`"3"`, `3`, `3.0`), if it
/// is one of 1..=[`MAX_VERSION`].
pub fn parse_version(raw: &str) -> Option<u32> {
    let raw = raw.trim();
    let v: u32 = match raw.parse::<u64>() {
        Ok(v) => u32::try_from(v).ok()?,
        // OTLP's doubleValue and JSON numbers written as 3.0.
        Err(_) => {
            let f: f64 = raw.parse().ok()?;
            if !(f.is_finite() && f.fract() == 0.0 && f >= 1.0 && f <= f64::from(MAX_VERSION)) {
                return None;
            }
            f as u32
        }
    };
    (1..=MAX_VERSION).contains(&v).then_some(v)
}

/// The prompt version a span's attributes name: ours first, then
/// Langfuse's; `None` when either half is missing or invalid (the
/// attributes are stored as sent either way).
pub fn reference(attributes: &[(String, String)]) -> Option<(String, u32)> {
    let get = |key: &str| {
        attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    [
        (NAME_ATTR, VERSION_ATTR),
        (LANGFUSE_NAME_ATTR, LANGFUSE_VERSION_ATTR),
    ]
    .into_iter()
    .find_map(|(n, v)| {
        let name = get(n)?;
        let version = parse_version(get(v)?)?;
        check_name(name).ok()?;
        Some((name.to_string(), version))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_follow_the_rules() {
        assert!(check_name("classify-intent").is_ok());
        assert!(check_name("support classifier v2 ✓").is_ok());
        assert!(check_name(&"x".repeat(128)).is_ok());
        assert!(check_name(&"x".repeat(129)).is_err());
        assert!(check_name("").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("a\nb").is_err());
        assert!(check_name(" padded").is_err());
        assert!(check_name("usage").is_err());
    }

    #[test]
    fn versions_are_positive_32_bit_integers() {
        assert_eq!(parse_version("3"), Some(3));
        assert_eq!(parse_version(" 3 "), Some(3));
        assert_eq!(parse_version("3.0"), Some(3));
        assert_eq!(parse_version("2147483647"), Some(MAX_VERSION));
        for bad in [
            "0",
            "-1",
            "2147483648",
            "3.5",
            "NaN",
            "inf",
            "",
            "v3",
            "1e300",
        ] {
            assert_eq!(parse_version(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_reference_needs_both_halves_and_prefers_ours() {
        assert_eq!(
            reference(&attrs(&[(NAME_ATTR, "p"), (VERSION_ATTR, "2")])),
            Some(("p".into(), 2))
        );
        assert_eq!(
            reference(&attrs(&[
                (LANGFUSE_NAME_ATTR, "lf"),
                (LANGFUSE_VERSION_ATTR, "4"),
                (NAME_ATTR, "ours"),
                (VERSION_ATTR, "1"),
            ])),
            Some(("ours".into(), 1))
        );
        assert_eq!(
            reference(&attrs(&[
                (LANGFUSE_NAME_ATTR, "lf"),
                (LANGFUSE_VERSION_ATTR, "4")
            ])),
            Some(("lf".into(), 4))
        );
        // Ours is incomplete: Langfuse's still counts.
        assert_eq!(
            reference(&attrs(&[
                (NAME_ATTR, "ours"),
                (LANGFUSE_NAME_ATTR, "lf"),
                (LANGFUSE_VERSION_ATTR, "4")
            ])),
            Some(("lf".into(), 4))
        );
        assert_eq!(reference(&attrs(&[(NAME_ATTR, "p")])), None);
        assert_eq!(
            reference(&attrs(&[(NAME_ATTR, "a/b"), (VERSION_ATTR, "1")])),
            None
        );
        assert_eq!(
            reference(&attrs(&[(NAME_ATTR, "p"), (VERSION_ATTR, "zero")])),
            None
        );
    }
}

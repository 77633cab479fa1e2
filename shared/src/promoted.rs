//! Span attributes promoted to columns and stored once.
//!
//! An OTLP span's message text arrives as an attribute (`input.value`,
//! `gen_ai.input.messages`, `gen_ai.prompt`, and their output twins) and is
//! promoted to the span's `input` / `output` columns. Keeping it in the
//! attribute map as well doubled the largest part of a GenAI span, so the
//! gateway replaces the attribute by a marker naming its key
//! (`agentvista.promoted.input` = `gen_ai.input.messages`), and the query
//! API puts the text back under that key when it answers: what a client
//! reads is unchanged, the text is stored once. Smaller promoted values
//! (model, token counts) stay in the map, where the `attribute=` filter and
//! the span facets read them.
//!
//! `agentvista.promoted.*` is reserved: a span that already carries such an
//! attribute is stored as sent, unpromoted.

/// Where the input text may come from, in order of preference.
pub const INPUT_KEYS: [&str; 3] = ["input.value", "gen_ai.input.messages", "gen_ai.prompt"];
/// Where the output text may come from, in order of preference.
pub const OUTPUT_KEYS: [&str; 3] = [
    "output.value",
    "gen_ai.output.messages",
    "gen_ai.completion",
];

pub const INPUT_MARKER: &str = "agentvista.promoted.input";
pub const OUTPUT_MARKER: &str = "agentvista.promoted.output";

/// For an attribute key whose text may be promoted: the marker that names
/// it and the span column the text is stored in (for filters on it).
pub fn stored_as(key: &str) -> Option<(&'static str, &'static str)> {
    if INPUT_KEYS.contains(&key) {
        Some((INPUT_MARKER, "input"))
    } else if OUTPUT_KEYS.contains(&key) {
        Some((OUTPUT_MARKER, "output"))
    } else {
        None
    }
}

/// Replace the attribute that `input` / `output` were read from by its
/// marker, when that is exact: exactly one attribute has the key and its
/// value is the column's text. Returns how many were promoted.
pub fn promote(
    attrs: &mut [(String, String)],
    input: Option<(&str, &str)>,
    output: Option<(&str, &str)>,
) -> usize {
    if attrs
        .iter()
        .any(|(k, _)| k == INPUT_MARKER || k == OUTPUT_MARKER)
    {
        return 0;
    }
    let mut n = 0;
    for (marker, taken) in [(INPUT_MARKER, input), (OUTPUT_MARKER, output)] {
        let Some((key, value)) = taken else { continue };
        let mut with_key = attrs.iter().enumerate().filter(|(_, (k, _))| k == key);
        if let (Some((i, (_, v))), None) = (with_key.next(), with_key.next()) {
            if v == value {
                attrs[i] = (marker.to_string(), key.to_string());
                n += 1;
            }
        }
    }
    n
}

/// The reverse of [`promote`]: each marker becomes its key again, with the
/// column's text as its value (a marker without its column is dropped).
pub fn restore(attrs: &mut Vec<(String, String)>, input: Option<&str>, output: Option<&str>) {
    for (marker, keys, value) in [
        (INPUT_MARKER, &INPUT_KEYS, input),
        (OUTPUT_MARKER, &OUTPUT_KEYS, output),
    ] {
        let Some(i) = attrs
            .iter()
            .position(|(k, v)| k == marker && keys.contains(&v.as_str()))
        else {
            continue;
        };
        match value {
            Some(text) => {
                let key = std::mem::take(&mut attrs[i].1);
                attrs[i] = (key, text.to_string());
            }
            None => {
                attrs.remove(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn message_text_is_kept_once_and_read_back_unchanged() {
        let sent = pairs(&[
            ("gen_ai.request.model", "gpt-4o"),
            ("gen_ai.input.messages", "[{\"role\":\"user\"}]"),
            ("gen_ai.output.messages", "[{\"role\":\"assistant\"}]"),
        ]);
        let mut stored = sent.clone();
        let n = promote(
            &mut stored,
            Some(("gen_ai.input.messages", "[{\"role\":\"user\"}]")),
            Some(("gen_ai.output.messages", "[{\"role\":\"assistant\"}]")),
        );
        assert_eq!(n, 2);
        assert_eq!(
            stored,
            pairs(&[
                ("gen_ai.request.model", "gpt-4o"),
                (INPUT_MARKER, "gen_ai.input.messages"),
                (OUTPUT_MARKER, "gen_ai.output.messages"),
            ])
        );
        restore(
            &mut stored,
            Some("[{\"role\":\"user\"}]"),
            Some("[{\"role\":\"assistant\"}]"),
        );
        assert_eq!(stored, sent);
    }

    #[test]
    fn promoted_keys_name_their_marker_and_column() {
        assert_eq!(stored_as("gen_ai.prompt"), Some((INPUT_MARKER, "input")));
        assert_eq!(stored_as("output.value"), Some((OUTPUT_MARKER, "output")));
        assert_eq!(stored_as("gen_ai.request.model"), None);
    }

    #[test]
    fn nothing_is_promoted_unless_exact() {
        // Two attributes with the key, a value that differs, a reserved key.
        for (attrs, input) in [
            (pairs(&[("input.value", "a"), ("input.value", "b")]), "a"),
            (pairs(&[("input.value", "a")]), "b"),
            (pairs(&[("input.value", "a"), (INPUT_MARKER, "x")]), "a"),
        ] {
            let mut stored = attrs.clone();
            assert_eq!(promote(&mut stored, Some(("input.value", input)), None), 0);
            assert_eq!(stored, attrs);
        }
    }
}

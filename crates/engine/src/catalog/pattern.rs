//! Regular expressions of the catalog, checked when a file loads and compiled on
//! first use: compiling one costs a few hundred microseconds (Unicode classes such
//! as `\w` build large automata), and most commands never need most of them.

use std::sync::OnceLock;

use regex::Regex;

/// A regex that is known to parse, compiled when first needed.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    source: String,
    compiled: OnceLock<Option<Regex>>,
}

impl Pattern {
    /// Checks the syntax of `source` and that it has at least `captures` groups.
    pub(crate) fn new(source: &str, what: &str, captures: usize) -> Result<Pattern, String> {
        let hir = regex_syntax::Parser::new()
            .parse(source)
            .map_err(|e| format!("{what} pattern is not a valid regex: {e}"))?;
        if hir.properties().explicit_captures_len() < captures {
            return Err(format!("{what} pattern needs a capture group"));
        }
        Ok(Pattern {
            source: source.to_string(),
            compiled: OnceLock::new(),
        })
    }

    /// The compiled regex; `None` only if it is too large to compile (logged).
    pub(crate) fn regex(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| match Regex::new(&self.source) {
                Ok(regex) => Some(regex),
                Err(err) => {
                    tracing::warn!(
                        "catalog pattern '{}' cannot be compiled: {err}",
                        self.source
                    );
                    None
                }
            })
            .as_ref()
    }

    /// The first capture group of the first match in `text`.
    pub(crate) fn first_capture<'t>(&self, text: &'t str) -> Option<&'t str> {
        self.regex()?
            .captures(text)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_and_capture_groups_are_checked_when_loaded() {
        assert!(Pattern::new("(a", "x", 0).is_err());
        assert!(
            Pattern::new("a", "x", 1)
                .unwrap_err()
                .contains("capture group")
        );
        let p = Pattern::new(r"class\s+(\w+)", "x", 1).unwrap();
        assert_eq!(p.first_capture("public class Main {"), Some("Main"));
        assert_eq!(p.first_capture("nothing"), None);
    }
}

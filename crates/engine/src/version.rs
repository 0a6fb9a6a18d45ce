//! Version selectors: what a request's `version` may say, and whether an
//! installed version answers it.
//!
//! A selector is an exact version (`3.11.2`), a prefix that ends at a dot (`3`,
//! `3.11`: not `3.1` for `3.11.2`), or a node-semver range as Piston clients send
//! them (`*`, `3.x`, `^3.10`, `~3.11`, `>=3.9 <4`, `3.9 || 3.11`), read by the
//! `node-semver` crate. Installed versions are compared by their first three
//! numbers (`1.63` is `1.63.0`, `3.11.2+dfsg` is `3.11.2`, `6.8.0.105` is `6.8.0`).

use node_semver::{Range, Version};

/// An installed version as a semver version: its first three numbers.
pub fn normalized(version: &str) -> Option<Version> {
    let core: String = version
        .trim()
        .trim_start_matches('v')
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = core.split('.').filter(|p| !p.is_empty());
    let major: u64 = parts.next()?.parse().ok()?;
    let minor: u64 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    let patch: u64 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    Version::parse(format!("{major}.{minor}.{patch}")).ok()
}

/// Whether the node-semver range `selector` holds `version`; `None` when the
/// selector is not a range or the version has no numbers.
pub fn range_matches(selector: &str, version: &str) -> Option<bool> {
    let range = Range::parse(selector.trim()).ok()?;
    Some(range.satisfies(&normalized(version)?))
}

/// Whether `wanted` names the installed `version`: equal, a prefix that ends at
/// a dot, or a range that holds it. An empty selector and `*` hold any version.
pub fn matches(wanted: &str, version: &str) -> bool {
    let wanted = wanted.trim();
    if wanted.is_empty() || wanted == "*" || wanted == version {
        return true;
    }
    if version
        .strip_prefix(wanted)
        .is_some_and(|rest| rest.starts_with('.'))
    {
        return true;
    }
    // A plain number that is not a prefix is not a range (`3.1` is not `3.11`).
    let plain = wanted.chars().all(|c| c.is_ascii_digit() || c == '.');
    !plain && range_matches(wanted, version).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_whole_components_only() {
        assert!(matches("3", "3.11.2"));
        assert!(matches("3.11", "3.11.2"));
        assert!(matches("3.11.2", "3.11.2"));
        assert!(!matches("3.1", "3.11.2"));
        assert!(!matches("2", "3.11.2"));
        assert!(!matches("3.11.2.1", "3.11.2"));
    }

    #[test]
    fn ranges_as_piston_clients_send_them_match() {
        for selector in [
            "*",
            "3.x",
            "^3.10",
            "~3.11",
            ">=3.9 <4",
            "3.9 || 3.11.x",
            "x",
        ] {
            assert!(matches(selector, "3.11.2"), "{selector}");
        }
        for selector in [">=3.12", "^2", "~3.10", "<3"] {
            assert!(!matches(selector, "3.11.2"), "{selector}");
        }
    }

    #[test]
    fn installed_versions_compare_by_their_first_three_numbers() {
        assert_eq!(normalized("1.63").unwrap().to_string(), "1.63.0");
        assert_eq!(normalized("3.11.2+dfsg").unwrap().to_string(), "3.11.2");
        assert_eq!(normalized("6.8.0.105").unwrap().to_string(), "6.8.0");
        assert!(matches("^1.63", "1.63"));
        assert!(range_matches("garbage ~~", "1.0").is_none());
    }
}

//! Version selectors as Piston takes them: `*`, `3`, `3.x`, `3.11.2`, `^3.10`,
//! `~3.11`, `>=3.9 <4`, `3.9 || 3.11`. Versions with fewer than three parts
//! (`1.19`, `6.8.0.105`) compare by their first three numbers, missing parts 0.

/// A version as three numbers.
type Triple = (u64, u64, u64);

/// The first three numbers of a version text (`12.2.0`, `3.11.2+dfsg`, `1.63`).
pub fn triple(version: &str) -> Option<Triple> {
    let core: String = version
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = core.split('.').filter(|p| !p.is_empty());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    Some((major, minor, patch))
}

/// Whether `version` satisfies `selector`; `None` when the selector is malformed.
pub fn matches(selector: &str, version: &str) -> Option<bool> {
    let selector = selector.trim();
    if selector.is_empty() {
        return None;
    }
    let version = triple(version)?;
    let mut any = false;
    for alternative in selector.split("||") {
        let mut all = true;
        let mut terms = 0;
        for term in alternative.split_whitespace() {
            terms += 1;
            all &= term_matches(term, version)?;
        }
        if terms == 0 {
            return None;
        }
        any |= all;
    }
    Some(any)
}

/// One comparator: `*`, a partial version, or an operator with a version.
fn term_matches(term: &str, v: Triple) -> Option<bool> {
    if term == "*" || term.eq_ignore_ascii_case("x") || term == "latest" {
        return Some(true);
    }
    let (op, rest) = ["^", "~", ">=", "<=", ">", "<", "="]
        .iter()
        .find_map(|op| term.strip_prefix(op).map(|rest| (*op, rest)))
        .unwrap_or(("", term));
    let rest = rest.strip_prefix('v').unwrap_or(rest);
    let parts: Vec<&str> = rest.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    // The numbers given; a wildcard or a missing part ends the prefix.
    let mut given: Vec<u64> = Vec::new();
    for part in &parts {
        if *part == "*" || part.eq_ignore_ascii_case("x") {
            break;
        }
        given.push(part.parse().ok()?);
    }
    let low = (
        given.first().copied().unwrap_or(0),
        given.get(1).copied().unwrap_or(0),
        given.get(2).copied().unwrap_or(0),
    );
    let prefix = |n: usize| match n {
        0 => true,
        1 => v.0 == low.0,
        2 => (v.0, v.1) == (low.0, low.1),
        _ => v == low,
    };
    Some(match op {
        "" | "=" => prefix(given.len()),
        ">=" => v >= low,
        "<=" => v <= low || prefix(given.len()),
        ">" => v > low && !prefix(given.len()),
        "<" => v < low,
        "~" => v >= low && prefix(given.len().clamp(1, 2)),
        "^" => {
            v >= low
                && if low.0 > 0 || given.len() == 1 {
                    v.0 == low.0
                } else if low.1 > 0 || given.len() == 2 {
                    (v.0, v.1) == (low.0, low.1)
                } else {
                    v == low
                }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_prefixes_match_like_semver_ranges() {
        assert_eq!(matches("*", "3.11.2"), Some(true));
        assert_eq!(matches("3", "3.11.2"), Some(true));
        assert_eq!(matches("3.x", "3.11.2"), Some(true));
        assert_eq!(matches("3.11", "3.11.2"), Some(true));
        assert_eq!(matches("3.10", "3.11.2"), Some(false));
        assert_eq!(matches("3.11.2", "3.11.2"), Some(true));
        assert_eq!(matches("2", "3.11.2"), Some(false));
    }

    #[test]
    fn operators_caret_and_tilde_follow_npm_semantics() {
        assert_eq!(matches("^3.10", "3.11.2"), Some(true));
        assert_eq!(matches("^4", "3.11.2"), Some(false));
        assert_eq!(matches("~3.11", "3.11.9"), Some(true));
        assert_eq!(matches("~3.10", "3.11.0"), Some(false));
        assert_eq!(matches(">=3.9 <4", "3.11.2"), Some(true));
        assert_eq!(matches(">3.11.2", "3.11.2"), Some(false));
        assert_eq!(matches("1.0 || 3", "3.0.0"), Some(true));
        assert_eq!(matches("^0.2.3", "0.2.9"), Some(true));
        assert_eq!(matches("^0.2.3", "0.3.0"), Some(false));
    }

    #[test]
    fn short_and_long_versions_compare_by_three_numbers() {
        assert_eq!(triple("1.19"), Some((1, 19, 0)));
        assert_eq!(triple("6.8.0.105"), Some((6, 8, 0)));
        assert_eq!(matches("6.8", "6.8.0.105"), Some(true));
    }

    #[test]
    fn malformed_selectors_are_none() {
        assert_eq!(matches("", "1.0.0"), None);
        assert_eq!(matches("abc", "1.0.0"), None);
        assert_eq!(matches("1.2.3.4", "1.0.0"), None);
    }
}

//! Checkers: whether a test's output is the expected one.
//!
//! The built-in checkers are pure functions of `(expected, actual)` bytes; a
//! [`Checker::Custom`] checker is a program of any catalog language that the judge
//! compiles once and runs in its own box per test (see `judge.rs`). A checker
//! says accepted or wrong answer, with a short comment that points at the first
//! difference.

use crate::job::SourceFile;

/// How a test's output is compared with its expected output.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Checker {
    /// Byte for byte.
    Exact,
    /// Line by line, ignoring trailing whitespace (spaces, tabs, `\r`) on each line
    /// and blank lines at the end (as Judge0 compares).
    #[default]
    Lines,
    /// Whitespace-separated tokens: any run of whitespace, including newlines, is
    /// one separator, and leading or trailing whitespace does not count.
    Tokens,
    /// Tokens, where two tokens that are both numbers are equal when they differ by
    /// at most `epsilon`, absolutely or relatively to the expected number.
    Float {
        /// The allowed difference, e.g. `1e-6`.
        epsilon: f64,
    },
    /// Like [`Checker::Lines`], ignoring letter case.
    CaseInsensitive,
    /// A checker program, testlib-style.
    Custom(CustomChecker),
}

/// A program that comes with a job to judge it: a custom checker or an
/// interactor, in any catalog language (C++ ones get testlib, see `testlib.rs`).
///
/// A checker runs with the paths of the test's input, the program's output and
/// the expected output as its three arguments (testlib's `input output answer`);
/// an interactor with the input and a file for its own output (`tout`), and the
/// expected output when there is one. Its exit code is its decision, as testlib
/// defines them: 0 accepted, 1 wrong answer, 2 presentation error, 3 its own
/// failure (`checker_error`), 7 points, 16 + n partial credit. Its stderr (or
/// its stdout, when stderr is empty) becomes the test's comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomProgram {
    /// A catalog id or alias; need not be the solution's language.
    pub language: String,
    /// Its source files; the first is the entry.
    pub files: Vec<SourceFile>,
}

/// A custom checker: see [`CustomProgram`].
pub type CustomChecker = CustomProgram;

/// The default epsilon of the `float` checker.
pub const DEFAULT_EPSILON: f64 = 1e-6;

/// What a checker decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Whether the output is accepted.
    pub accepted: bool,
    /// Where the output differs (built-in checkers) or what the checker printed.
    pub comment: Option<String>,
}

impl CheckOutcome {
    fn accepted() -> Self {
        CheckOutcome {
            accepted: true,
            comment: None,
        }
    }

    fn wrong(comment: String) -> Self {
        CheckOutcome {
            accepted: false,
            comment: Some(comment),
        }
    }
}

impl Checker {
    /// The name used in requests and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Checker::Exact => "exact",
            Checker::Lines => "lines",
            Checker::Tokens => "tokens",
            Checker::Float { .. } => "float",
            Checker::CaseInsensitive => "case_insensitive",
            Checker::Custom(_) => "custom",
        }
    }

    /// Compares with a built-in checker; `None` for a custom checker, which needs a box.
    pub fn compare(&self, expected: &[u8], actual: &[u8]) -> Option<CheckOutcome> {
        Some(match self {
            Checker::Exact => exact(expected, actual),
            Checker::Lines => lines(expected, actual, false),
            Checker::Tokens => tokens(expected, actual, None),
            Checker::Float { epsilon } => tokens(expected, actual, Some(*epsilon)),
            Checker::CaseInsensitive => lines(expected, actual, true),
            Checker::Custom(_) => return None,
        })
    }
}

/// Longest piece of output quoted in a comment.
const QUOTE_CHARS: usize = 60;

/// `bytes` as a short, readable quotation.
fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut quoted: String = text.chars().take(QUOTE_CHARS).collect();
    if text.chars().count() > QUOTE_CHARS {
        quoted.push('…');
    }
    format!("'{}'", quoted.escape_debug())
}

fn exact(expected: &[u8], actual: &[u8]) -> CheckOutcome {
    if expected == actual {
        return CheckOutcome::accepted();
    }
    let at = expected
        .iter()
        .zip(actual)
        .position(|(e, a)| e != a)
        .unwrap_or(expected.len().min(actual.len()));
    let line = 1 + expected[..at].iter().filter(|&&b| b == b'\n').count();
    let what = match (expected.get(at), actual.get(at)) {
        (Some(&e), Some(&a)) => format!("expected {}, got {}", quote(&[e]), quote(&[a])),
        (Some(_), None) => format!(
            "the output ends early ({} of {} bytes)",
            actual.len(),
            expected.len()
        ),
        _ => format!(
            "the output is longer ({} bytes, {} expected)",
            actual.len(),
            expected.len()
        ),
    };
    CheckOutcome::wrong(format!("byte {} (line {line}) differs: {what}", at + 1))
}

/// The lines of `text` without trailing whitespace, and without the blank lines at the end.
fn trimmed_lines(text: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').map(trim_end).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

fn trim_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &line[..end]
}

/// Letter case folded: Unicode when the text is UTF-8, ASCII otherwise.
fn fold(bytes: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_lowercase().into_bytes(),
        Err(_) => bytes.to_ascii_lowercase(),
    }
}

fn lines(expected: &[u8], actual: &[u8], ignore_case: bool) -> CheckOutcome {
    let want = trimmed_lines(expected);
    let got = trimmed_lines(actual);
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        let same = if ignore_case {
            fold(w) == fold(g)
        } else {
            w == g
        };
        if !same {
            return CheckOutcome::wrong(format!(
                "line {}: expected {}, got {}",
                i + 1,
                quote(w),
                quote(g)
            ));
        }
    }
    match want.len().cmp(&got.len()) {
        std::cmp::Ordering::Equal => CheckOutcome::accepted(),
        std::cmp::Ordering::Greater => CheckOutcome::wrong(format!(
            "the output ends after {} lines, {} expected; line {} should be {}",
            got.len(),
            want.len(),
            got.len() + 1,
            quote(want[got.len()])
        )),
        std::cmp::Ordering::Less => CheckOutcome::wrong(format!(
            "the output has {} lines, {} expected; line {} is {}",
            got.len(),
            want.len(),
            want.len() + 1,
            quote(got[want.len()])
        )),
    }
}

fn split_tokens(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|b| b.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
}

fn tokens(expected: &[u8], actual: &[u8], epsilon: Option<f64>) -> CheckOutcome {
    let want: Vec<&[u8]> = split_tokens(expected).collect();
    let got: Vec<&[u8]> = split_tokens(actual).collect();
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        let same = match epsilon.and_then(|eps| numbers(w, g).map(|(e, a)| (e, a, eps))) {
            Some((e, a, eps)) => close(e, a, eps),
            None => w == g,
        };
        if !same {
            let mut comment = format!("token {}: expected {}, got {}", i + 1, quote(w), quote(g));
            if let (Some(eps), Some((e, a))) = (epsilon, numbers(w, g)) {
                comment.push_str(&format!(
                    " (difference {:e} > epsilon {eps:e})",
                    (e - a).abs()
                ));
            }
            return CheckOutcome::wrong(comment);
        }
    }
    match want.len().cmp(&got.len()) {
        std::cmp::Ordering::Equal => CheckOutcome::accepted(),
        std::cmp::Ordering::Greater => CheckOutcome::wrong(format!(
            "the output ends after {} tokens, {} expected; token {} should be {}",
            got.len(),
            want.len(),
            got.len() + 1,
            quote(want[got.len()])
        )),
        std::cmp::Ordering::Less => CheckOutcome::wrong(format!(
            "the output has {} tokens, {} expected; token {} is {}",
            got.len(),
            want.len(),
            want.len() + 1,
            quote(got[want.len()])
        )),
    }
}

/// Both tokens as numbers, when both are.
fn numbers(expected: &[u8], actual: &[u8]) -> Option<(f64, f64)> {
    let parse = |t: &[u8]| std::str::from_utf8(t).ok()?.parse::<f64>().ok();
    Some((parse(expected)?, parse(actual)?))
}

/// testlib's `doubleCompare`: NaN equals only NaN, an infinity only itself, and
/// finite numbers are equal within `epsilon`, absolutely or relatively.
fn close(expected: f64, actual: f64, epsilon: f64) -> bool {
    if expected.is_nan() || actual.is_nan() {
        return expected.is_nan() && actual.is_nan();
    }
    if expected.is_infinite() || actual.is_infinite() {
        return expected == actual;
    }
    let difference = (expected - actual).abs();
    difference <= epsilon || difference <= epsilon * expected.abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(checker: &Checker, expected: &str, actual: &str) -> bool {
        checker
            .compare(expected.as_bytes(), actual.as_bytes())
            .unwrap()
            .accepted
    }

    fn comment(checker: &Checker, expected: &str, actual: &str) -> String {
        checker
            .compare(expected.as_bytes(), actual.as_bytes())
            .unwrap()
            .comment
            .unwrap()
    }

    const FLOAT: Checker = Checker::Float { epsilon: 1e-6 };

    #[test]
    fn exact_accepts_only_identical_bytes() {
        assert!(accepts(&Checker::Exact, "1 2\n", "1 2\n"));
        assert!(!accepts(&Checker::Exact, "1 2\n", "1 2"));
        assert!(!accepts(&Checker::Exact, "1 2\n", "1 2 \n"));
        assert!(!accepts(&Checker::Exact, "1\n", "1\r\n"));
        assert!(accepts(&Checker::Exact, "", ""));
    }

    #[test]
    fn exact_names_the_first_differing_byte_and_its_line() {
        assert_eq!(
            comment(&Checker::Exact, "ab\ncd\n", "ab\ncx\n"),
            "byte 5 (line 2) differs: expected 'd', got 'x'"
        );
        assert_eq!(
            comment(&Checker::Exact, "abc", "ab"),
            "byte 3 (line 1) differs: the output ends early (2 of 3 bytes)"
        );
    }

    #[test]
    fn lines_ignores_trailing_spaces_crlf_and_trailing_blank_lines() {
        assert!(accepts(&Checker::Lines, "1 2\n3\n", "1 2   \n3\t\n\n\n"));
        assert!(accepts(&Checker::Lines, "1 2\n3\n", "1 2\r\n3\r\n"));
        assert!(accepts(&Checker::Lines, "1 2\n3", "1 2\n3\n"));
        assert!(accepts(&Checker::Lines, "", ""));
        assert!(accepts(&Checker::Lines, "", "\n\n  \n"));
    }

    #[test]
    fn lines_counts_leading_spaces_inner_spaces_and_inner_blank_lines() {
        assert!(!accepts(&Checker::Lines, "1 2\n", " 1 2\n"));
        assert!(!accepts(&Checker::Lines, "1 2\n", "1  2\n"));
        assert!(!accepts(&Checker::Lines, "1\n2\n", "1\n\n2\n"));
    }

    #[test]
    fn lines_says_which_line_differs_or_which_is_missing() {
        assert_eq!(
            comment(&Checker::Lines, "1\n2\n3\n", "1\n5\n3\n"),
            "line 2: expected '2', got '5'"
        );
        assert_eq!(
            comment(&Checker::Lines, "1\n2\n", "1\n"),
            "the output ends after 1 lines, 2 expected; line 2 should be '2'"
        );
        assert_eq!(
            comment(&Checker::Lines, "1\n", ""),
            "the output ends after 0 lines, 1 expected; line 1 should be '1'"
        );
        assert_eq!(
            comment(&Checker::Lines, "1\n", "1\nextra\n"),
            "the output has 2 lines, 1 expected; line 2 is 'extra'"
        );
    }

    #[test]
    fn empty_output_is_wrong_when_something_is_expected() {
        for checker in [
            Checker::Exact,
            Checker::Lines,
            Checker::Tokens,
            FLOAT,
            Checker::CaseInsensitive,
        ] {
            assert!(!accepts(&checker, "42\n", ""), "{}", checker.name());
            assert!(accepts(&checker, "", ""), "{}", checker.name());
        }
    }

    #[test]
    fn tokens_ignores_every_kind_of_whitespace_but_not_token_boundaries() {
        assert!(accepts(&Checker::Tokens, "1 2 3\n", "  1\n2\t\t3  \r\n\n"));
        assert!(accepts(&Checker::Tokens, "", " \n "));
        assert!(!accepts(&Checker::Tokens, "12 3", "1 23"));
        assert!(!accepts(&Checker::Tokens, "1.0", "1"));
        assert_eq!(
            comment(&Checker::Tokens, "a b c", "a b"),
            "the output ends after 2 tokens, 3 expected; token 3 should be 'c'"
        );
    }

    #[test]
    fn float_accepts_numbers_within_epsilon_absolute_or_relative() {
        assert!(accepts(&FLOAT, "0.5", "0.5000004"));
        assert!(accepts(&FLOAT, "1", "1.000000"));
        assert!(!accepts(&FLOAT, "0.5", "0.500002"));
        // Relative: a huge number may differ by more than epsilon in absolute terms.
        assert!(accepts(&FLOAT, "1e300", "1.0000000001e300"));
        assert!(!accepts(&FLOAT, "1e300", "1.001e300"));
        assert!(accepts(&FLOAT, "123456789012", "123456789012.5"));
    }

    #[test]
    fn float_treats_nan_and_infinities_strictly() {
        assert!(accepts(&FLOAT, "nan", "NaN"));
        assert!(!accepts(&FLOAT, "nan", "0"));
        assert!(!accepts(&FLOAT, "0", "nan"));
        assert!(accepts(&FLOAT, "inf", "inf"));
        assert!(!accepts(&FLOAT, "inf", "-inf"));
        assert!(!accepts(&FLOAT, "1e308", "inf"));
        // 1e400 overflows to infinity, like the expected infinity.
        assert!(accepts(&FLOAT, "inf", "1e400"));
    }

    #[test]
    fn float_compares_words_exactly_and_reports_the_difference() {
        assert!(accepts(&FLOAT, "YES 0.25", "YES 0.2500001"));
        assert!(!accepts(&FLOAT, "YES 0.25", "yes 0.25"));
        assert_eq!(
            comment(&FLOAT, "1 2.5", "1 2.6"),
            "token 2: expected '2.5', got '2.6' (difference 1.0000000000000009e-1 > epsilon 1e-6)"
        );
    }

    #[test]
    fn case_insensitive_folds_letters_and_trims_like_lines() {
        assert!(accepts(
            &Checker::CaseInsensitive,
            "Yes\nNO\n",
            "yes  \nno\r\n"
        ));
        assert!(accepts(&Checker::CaseInsensitive, "ÉTÉ\n", "été\n"));
        assert!(!accepts(&Checker::CaseInsensitive, "yes\n", "yes no\n"));
    }

    #[test]
    fn long_and_odd_output_is_quoted_short_and_escaped() {
        let long = "x".repeat(200);
        let c = comment(&Checker::Lines, "y\n", &format!("{long}\n"));
        assert!(c.ends_with("…'"), "{c}");
        assert!(c.len() < 100, "{c}");
        assert_eq!(
            comment(&Checker::Lines, "a\n", "\u{1b}[31m\n"),
            "line 1: expected 'a', got '\\u{1b}[31m'"
        );
    }

    #[test]
    fn a_custom_checker_needs_a_box() {
        let custom = Checker::Custom(CustomChecker {
            language: "python".into(),
            files: vec![],
        });
        assert_eq!(custom.compare(b"1", b"1"), None);
    }
}

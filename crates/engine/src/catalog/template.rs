//! Command templates: `["javac", "-d", ".", "{sources}"]` with placeholders filled
//! in per job.

use std::fmt;

/// A value known only once the job is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Var {
    Entry,
    Stem,
    Sources,
    Main,
    MemoryMb,
    HeapMb,
    Args,
    Options,
}

/// Every placeholder with its name: the one table parsing and printing share.
const VARS: &[(&str, Var)] = &[
    ("entry", Var::Entry),
    ("stem", Var::Stem),
    ("sources", Var::Sources),
    ("main", Var::Main),
    ("memory_mb", Var::MemoryMb),
    ("heap_mb", Var::HeapMb),
    ("args", Var::Args),
    ("options", Var::Options),
];

impl Var {
    fn parse(name: &str) -> Option<Var> {
        VARS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    fn name(self) -> &'static str {
        VARS.iter()
            .find(|(_, v)| *v == self)
            .map_or("?", |(n, _)| n)
    }

    /// Whether the placeholder stands for a list of arguments.
    fn is_list(self) -> bool {
        matches!(self, Var::Sources | Var::Args | Var::Options)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Var),
}

/// One argument of a template: text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Arg(Vec<Piece>);

/// A parsed command template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    args: Vec<Arg>,
}

/// The values of one job's placeholders.
#[derive(Debug, Clone, Default)]
pub(crate) struct Values<'a> {
    pub entry: &'a str,
    pub stem: &'a str,
    pub sources: &'a [String],
    pub main: &'a str,
    pub memory_mb: u64,
    pub heap_mb: u64,
    pub args: &'a [String],
    /// The user's compiler options, where a compile command places `{options}`.
    pub options: &'a [String],
}

impl Template {
    /// Parses `argv`; the error says which argument and placeholder is wrong.
    pub(crate) fn parse(argv: &[String]) -> Result<Template, String> {
        if argv.is_empty() || argv[0].is_empty() {
            return Err("the command is empty".into());
        }
        let args = argv
            .iter()
            .map(|a| parse_arg(a))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(Piece::Var(v)) = args[0].0.first()
            && v.is_list()
        {
            return Err("a command cannot start with a list placeholder".into());
        }
        Ok(Template { args })
    }

    /// The program: the first argument's literal text, if it has no placeholder.
    pub(crate) fn program(&self) -> Option<&str> {
        match self.args[0].0.as_slice() {
            [Piece::Text(t)] => Some(t),
            _ => None,
        }
    }

    /// The host files the command names after its program (a compiler's script or
    /// jar, `/usr/share/nodejs/typescript/lib/tsc.js`): absolute paths without
    /// spaces, given as whole arguments.
    pub(crate) fn named_files(&self) -> impl Iterator<Item = &str> {
        self.args
            .iter()
            .skip(1)
            .filter_map(|arg| match arg.0.as_slice() {
                [Piece::Text(t)] if t.starts_with('/') && !t.contains(char::is_whitespace) => {
                    Some(t.as_str())
                }
                _ => None,
            })
    }

    /// Whether the template places the user's compiler options (`{options}`).
    pub(crate) fn takes_options(&self) -> bool {
        self.args
            .iter()
            .any(|a| a.0.contains(&Piece::Var(Var::Options)))
    }

    /// Whether the template places the user's arguments itself.
    pub(crate) fn uses_args(&self) -> bool {
        self.args
            .iter()
            .any(|a| a.0.contains(&Piece::Var(Var::Args)))
    }

    /// The command line for `values`; the user's arguments are appended unless the
    /// template places them.
    pub(crate) fn expand(&self, values: &Values<'_>) -> Vec<String> {
        let mut out = Vec::new();
        for arg in &self.args {
            match arg.0.as_slice() {
                [Piece::Var(Var::Sources)] => out.extend(values.sources.iter().cloned()),
                [Piece::Var(Var::Args)] => out.extend(values.args.iter().cloned()),
                [Piece::Var(Var::Options)] => out.extend(values.options.iter().cloned()),
                pieces => out.push(pieces.iter().map(|p| piece_text(p, values)).collect()),
            }
        }
        if !self.uses_args() {
            out.extend(values.args.iter().cloned());
        }
        out
    }
}

fn piece_text(piece: &Piece, v: &Values<'_>) -> String {
    match piece {
        Piece::Text(t) => t.clone(),
        Piece::Var(Var::Entry) => v.entry.to_string(),
        Piece::Var(Var::Stem) => v.stem.to_string(),
        Piece::Var(Var::Main) => v.main.to_string(),
        Piece::Var(Var::MemoryMb) => v.memory_mb.to_string(),
        Piece::Var(Var::HeapMb) => v.heap_mb.to_string(),
        // Lists stand alone (checked at parse time).
        Piece::Var(Var::Sources | Var::Args | Var::Options) => String::new(),
    }
}

/// Splits one argument into text and `{placeholder}`s; `{{` and `}}` are braces.
fn parse_arg(text: &str) -> Result<Arg, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let var = Var::parse(&name)
                    .ok_or_else(|| format!("unknown placeholder '{{{name}}}' in '{text}'"))?;
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Var(var));
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    let list_inside = pieces.len() > 1
        && pieces
            .iter()
            .any(|p| matches!(p, Piece::Var(v) if v.is_list()));
    if list_inside {
        return Err(format!(
            "'{text}': {{sources}}, {{args}} and {{options}} must be a whole argument"
        ));
    }
    Ok(Arg(pieces))
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<String> = self
            .args
            .iter()
            .map(|a| {
                a.0.iter()
                    .map(|p| match p {
                        Piece::Text(t) => t.clone(),
                        Piece::Var(v) => format!("{{{}}}", v.name()),
                    })
                    .collect()
            })
            .collect();
        f.write_str(&words.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(argv: &[&str]) -> Result<Template, String> {
        Template::parse(&argv.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn placeholders_expand_inside_arguments_and_lists_spread() {
        let t = template(&["java", "-Xmx{heap_mb}m", "-cp", ".", "{main}"]).unwrap();
        let args = vec!["a".to_string(), "b c".to_string()];
        let values = Values {
            main: "Hello",
            heap_mb: 128,
            args: &args,
            ..Values::default()
        };
        assert_eq!(
            t.expand(&values),
            ["java", "-Xmx128m", "-cp", ".", "Hello", "a", "b c"]
        );
    }

    #[test]
    fn sources_become_one_argument_each() {
        let t = template(&["gcc", "{sources}", "-o", "main"]).unwrap();
        let sources = vec!["a.c".to_string(), "dir/b.c".to_string()];
        let values = Values {
            sources: &sources,
            ..Values::default()
        };
        assert_eq!(t.expand(&values), ["gcc", "a.c", "dir/b.c", "-o", "main"]);
    }

    #[test]
    fn args_placeholder_places_the_arguments_and_nothing_is_appended() {
        let t = template(&["sh", "-c", "x", "{args}", "--end"]).unwrap();
        let args = vec!["1".to_string()];
        let values = Values {
            args: &args,
            ..Values::default()
        };
        assert_eq!(t.expand(&values), ["sh", "-c", "x", "1", "--end"]);
    }

    #[test]
    fn unknown_placeholder_is_refused_by_name() {
        let err = template(&["cc", "{sauce}"]).unwrap_err();
        assert!(err.contains("{sauce}"), "{err}");
    }

    #[test]
    fn list_placeholder_inside_an_argument_is_refused() {
        assert!(template(&["cc", "-I{sources}"]).is_err());
    }

    #[test]
    fn a_template_prints_as_written() {
        let t = template(&["java", "-Xmx{heap_mb}m", "{main}", "{sources}"]).unwrap();
        assert_eq!(t.to_string(), "java -Xmx{heap_mb}m {main} {sources}");
    }

    #[test]
    fn doubled_braces_are_literal() {
        let t = template(&["awk", "{{print}}"]).unwrap();
        assert_eq!(t.expand(&Values::default()), ["awk", "{print}"]);
    }
}

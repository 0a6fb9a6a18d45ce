//! `runbox languages`: the catalog, with what this host has installed.

use std::process::ExitCode;

use clap::Args;
use runbox_engine::Installation;
use serde::Serialize;

use super::CatalogArgs;

/// Flags of `runbox languages`.
#[derive(Args)]
pub struct LanguagesArgs {
    /// Print JSON instead of a table.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print a Markdown table of the installed versions, one column per runtime
    /// (how docs/languages.md is made).
    #[arg(long)]
    markdown: bool,
    #[command(flatten)]
    catalog: CatalogArgs,
}

/// One language as `--json` prints it.
#[derive(Serialize)]
struct Entry<'a> {
    id: &'a str,
    name: &'a str,
    runtime: &'a str,
    aliases: &'a [String],
    extensions: &'a [String],
    compiled: bool,
    installed: bool,
    version: Option<&'a str>,
    #[serde(flatten)]
    installation: &'a Installation,
    packages: &'a [String],
    install: String,
}

/// Lists every language in every version (one row per runtime); versions are
/// detected in boxes, in parallel.
pub fn run(args: LanguagesArgs) -> anyhow::Result<ExitCode> {
    let catalog = args.catalog.catalog()?;
    let engine = super::engine(catalog, 8, None)?;
    let languages = engine.installations();
    if args.json {
        let entries: Vec<Entry<'_>> = languages
            .iter()
            .map(|(l, i)| Entry {
                id: &l.id,
                name: &l.name,
                runtime: l.variant(),
                aliases: &l.aliases,
                extensions: &l.extensions,
                compiled: l.is_compiled(),
                installed: i.is_installed(),
                version: i.version(),
                installation: i,
                packages: &l.packages,
                install: l.install_command(),
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    if args.markdown {
        out!("{}", markdown(&languages));
        return Ok(ExitCode::SUCCESS);
    }
    let width = languages.iter().map(|(l, _)| l.id.len()).max().unwrap_or(2);
    let name_width = languages
        .iter()
        .map(|(l, _)| l.name.len())
        .max()
        .unwrap_or(4);
    let runtime_width = languages
        .iter()
        .map(|(l, _)| l.variant().len())
        .max()
        .unwrap_or(7)
        .max(7);
    outln!(
        "{:width$}  {:name_width$}  {:runtime_width$}  VERSION",
        "ID",
        "NAME",
        "RUNTIME"
    );
    for (language, installation) in &languages {
        let state = match installation {
            Installation::Installed { version } => {
                version.clone().unwrap_or_else(|| "installed".into())
            }
            Installation::Missing { .. } => {
                format!("not installed: {}", language.install_command())
            }
            Installation::Broken { reason } => format!("broken: {reason}"),
        };
        outln!(
            "{:width$}  {:name_width$}  {:runtime_width$}  {state}",
            language.id,
            language.name,
            language.variant()
        );
    }
    let installed = languages.iter().filter(|(_, i)| i.is_installed()).count();
    outln!("{installed} of {} installed", languages.len());
    Ok(ExitCode::SUCCESS)
}

/// The installed versions as a Markdown table: a row per language, a column per
/// runtime (the host's first), and a line with the totals.
fn markdown(languages: &[(std::sync::Arc<runbox_engine::Language>, Installation)]) -> String {
    use std::collections::BTreeMap;
    use std::fmt::Write as _;

    let mut runtimes: Vec<&str> = vec![runbox_engine::runtime::HOST];
    for (language, _) in languages {
        if !runtimes.contains(&language.variant()) {
            runtimes.push(language.variant());
        }
    }
    runtimes[1..].sort_unstable();
    // id -> (name, runtime -> version)
    let mut rows: BTreeMap<&str, (&str, BTreeMap<&str, String>)> = BTreeMap::new();
    let mut pairs = 0;
    for (language, installation) in languages {
        if !installation.is_installed() {
            continue;
        }
        pairs += 1;
        let version = installation.version().unwrap_or("installed").to_string();
        rows.entry(&language.id)
            .or_insert_with(|| (&language.name, BTreeMap::new()))
            .1
            .insert(language.variant(), version);
    }
    let mut out = String::new();
    let header: Vec<String> = runtimes.iter().map(|r| format!("`{r}`")).collect();
    let _ = writeln!(out, "| Language | id | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|---|{}", "---|".repeat(runtimes.len()));
    for (id, (name, versions)) in &rows {
        let cells: Vec<&str> = runtimes
            .iter()
            .map(|r| versions.get(r).map_or("", String::as_str))
            .collect();
        let _ = writeln!(out, "| {name} | `{id}` | {} |", cells.join(" | "));
    }
    let _ = writeln!(
        out,
        "\n{} languages, {pairs} (language, version) pairs installed.",
        rows.len()
    );
    out
}

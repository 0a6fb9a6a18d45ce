//! What `runbox run` and `runbox judge` share: reading source files, telling their
//! language, and the limit flags.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use runbox_engine::units::{parse_duration, parse_size};
use runbox_engine::{Catalog, LimitOverrides, SourceFile};

/// The limit flags of a job.
#[derive(Args, Clone, Debug)]
pub struct LimitArgs {
    /// CPU time of the program (the whole box).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub time_limit: Option<Duration>,
    /// Wall-clock time of the program.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wall_time_limit: Option<Duration>,
    /// Memory of the program (the whole box).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory_limit: Option<u64>,
    /// Processes and threads of the program.
    #[arg(long, value_name = "N")]
    pub processes: Option<u64>,
    /// Bytes kept of stdout and of stderr, each.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub output_limit: Option<u64>,
    /// CPU time of the compiler.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub compile_time_limit: Option<Duration>,
    /// Memory of the compiler.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub compile_memory_limit: Option<u64>,
}

impl LimitArgs {
    /// The run stage's limits the user set.
    pub fn run(&self) -> LimitOverrides {
        LimitOverrides {
            cpu_time: self.time_limit,
            wall_time: self.wall_time_limit,
            memory_bytes: self.memory_limit,
            processes: self.processes,
            output_bytes: self.output_limit,
            ..LimitOverrides::default()
        }
    }

    /// The compile stage's limits the user set.
    pub fn compile(&self) -> LimitOverrides {
        LimitOverrides {
            cpu_time: self.compile_time_limit,
            memory_bytes: self.compile_memory_limit,
            ..LimitOverrides::default()
        }
    }
}

/// Reads each file, named as the work directory will name it.
pub fn read_sources(paths: &[PathBuf]) -> anyhow::Result<Vec<SourceFile>> {
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let content = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow::anyhow!("{}: no such file", path.display()),
            _ => anyhow::anyhow!("cannot read {}: {e}", path.display()),
        })?;
        files.push(SourceFile::named(job_file_name(path)?, content));
    }
    Ok(files)
}

/// The catalog id of the language: `flag` when given, else detected from the
/// first file (at `first`).
pub fn language_of(
    catalog: &Catalog,
    flag: Option<&str>,
    files: &[SourceFile],
    first: &Path,
) -> anyhow::Result<String> {
    if let Some(name) = flag {
        return Ok(catalog.get(name)?.id.clone());
    }
    let Some(file) = files.first() else {
        bail!("no source file given");
    };
    let name = file.name.as_deref().unwrap_or_default();
    match catalog.detect(name, &file.content) {
        Some(language) => Ok(language.id.clone()),
        None => bail!(
            "cannot tell the language of {}: give --language (`runbox languages` lists them)",
            first.display()
        ),
    }
}

/// The name a file gets in the work directory: its path as given when that is a
/// plain relative path (so `src/util.go` keeps its directory), else its file name.
pub fn job_file_name(path: &Path) -> anyhow::Result<String> {
    let plain = path.is_relative() && path.components().all(|c| matches!(c, Component::Normal(_)));
    let name = if plain {
        path.to_str()
    } else {
        path.file_name().and_then(|n| n.to_str())
    };
    name.map(str::to_string)
        .with_context(|| format!("{}: the file name must be UTF-8", path.display()))
}

/// A duration in milliseconds, one decimal.
pub fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// A size in KiB, or MiB from 10 MiB on.
pub fn kib(kb: u64) -> String {
    if kb >= 10 * 1024 {
        format!("{:.1} MiB", kb as f64 / 1024.0)
    } else {
        format!("{kb} KiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_keep_their_directories_and_others_their_file_name() {
        assert_eq!(
            job_file_name(Path::new("src/util.go")).unwrap(),
            "src/util.go"
        );
        assert_eq!(job_file_name(Path::new("/tmp/x/main.c")).unwrap(), "main.c");
        assert_eq!(job_file_name(Path::new("../main.c")).unwrap(), "main.c");
        assert_eq!(job_file_name(Path::new("./main.c")).unwrap(), "main.c");
    }
}

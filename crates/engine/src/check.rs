//! Checking a job, once: everything a run can refuse is refused here.
//!
//! [`Engine::check`] turns a [`Job`] into a [`CheckedJob`] or a [`JobError`]: the
//! sizes and names of its files and tests, its limits against the language's and
//! the engine's, the language and the checker's language (known and installed),
//! the version asked for, arguments, compiler options and network. A
//! [`CheckedJob`] carries what the check resolved (the languages, the limits, the
//! files as the language lays them out), so running it repeats none of it and can
//! fail only for reasons of the host.

use std::sync::Arc;

use crate::Engine;
use crate::catalog::Language;
use crate::checker::Checker;
use crate::error::JobError;
use crate::installation::{self, Installation};
use crate::job::Job;
use crate::pipeline::{Layout, StageLimits};

/// A job that passed [`Engine::check`]: only the engine can make one.
pub struct CheckedJob {
    pub(crate) job: Job,
    pub(crate) language: Arc<Language>,
    pub(crate) limits: StageLimits,
    pub(crate) layout: Layout,
    /// Each test's run limits, in test order.
    pub(crate) test_limits: Vec<runbox_sandbox::Limits>,
    /// A custom checker, compiled when the job runs.
    pub(crate) checker: Option<CheckedProgram>,
    /// An interactor, compiled when the job runs.
    pub(crate) interactor: Option<CheckedProgram>,
}

/// A helper program of a job (a custom checker, an interactor), checked like the job.
pub(crate) struct CheckedProgram {
    pub(crate) language: Arc<Language>,
    pub(crate) limits: StageLimits,
    pub(crate) layout: Layout,
}

impl CheckedJob {
    /// The job as checked (its `language` is the catalog id, aliases resolved).
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The catalog entry of its language.
    pub fn language(&self) -> &Arc<Language> {
        &self.language
    }

    /// The limits of its run stage, as the language and the job set them.
    pub fn run_limits(&self) -> &runbox_sandbox::Limits {
        &self.limits.run
    }

    /// The limits of its compile stage.
    pub fn compile_limits(&self) -> &runbox_sandbox::Limits {
        &self.limits.compile
    }

    /// The longest this job may take on the wall clock, compile and every test
    /// (or run) included, one after another.
    pub fn max_wall_time(&self) -> std::time::Duration {
        let compile = if self.language.is_compiled() {
            self.limits.compile.wall_time
        } else {
            std::time::Duration::ZERO
        };
        let runs: std::time::Duration = if self.test_limits.is_empty() {
            self.limits.run.wall_time * self.job.runs.max(1)
        } else {
            self.test_limits.iter().map(|l| l.wall_time).sum()
        };
        let checker = self
            .checker
            .as_ref()
            .map(|c| {
                c.limits.compile.wall_time + c.limits.run.wall_time * self.test_limits.len() as u32
            })
            .unwrap_or_default();
        // An interactor runs beside the program; its compile comes first.
        let interactor = self
            .interactor
            .as_ref()
            .map(|c| c.limits.compile.wall_time)
            .unwrap_or_default();
        compile + runs + checker + interactor
    }
}

impl Engine {
    /// Checks `job` fully without running it: a [`CheckedJob`], or the client's
    /// mistake as a [`JobError`] naming the field at fault.
    ///
    /// Learning the installed version of a language may run its version command
    /// in a box the first time (then it is remembered).
    pub fn check(&self, mut job: Job) -> Result<CheckedJob, JobError> {
        job.check(&self.config.bounds)?;
        if job.network && !self.sandbox.has_network() {
            return Err(JobError::invalid(
                "network",
                "this server gives programs no network (the operator can allow it: network.enabled)",
            ));
        }
        let language = self.select(
            &job.language,
            job.version.as_deref(),
            job.runtime.as_deref(),
            "language",
        )?;
        let language = if job.analysis.memcheck && crate::functions::applies_to(&language) {
            self.with_valgrind(language, &job)?
        } else {
            language
        };
        if !language.accepts_args && !job.args.is_empty() {
            return Err(JobError::invalid(
                "args",
                format!("{} programs cannot be given arguments", language.name),
            ));
        }
        let limits = StageLimits::resolve(
            &language,
            &job,
            &self.config.compile_limits,
            &self.config.run_limits,
        )?;
        let mut test_limits = Vec::with_capacity(job.tests.len());
        for (i, test) in job.tests.iter().enumerate() {
            let limits = test.limits.apply(&limits.run);
            limits
                .validate()
                .map_err(|e| JobError::invalid(format!("tests[{i}].limits"), e.to_string()))?;
            if !language.accepts_args && !test.args.is_empty() {
                return Err(JobError::invalid(
                    format!("tests[{i}].args"),
                    format!("{} programs cannot be given arguments", language.name),
                ));
            }
            test_limits.push(limits);
        }
        if job.analysis.memcheck {
            if !crate::functions::applies_to(&language) {
                return Err(JobError::invalid(
                    "analysis.memcheck",
                    format!("memcheck runs C and C++ programs, not {}", language.name),
                ));
            }
            if job.interactor.is_some() {
                return Err(JobError::invalid(
                    "analysis.memcheck",
                    "memcheck does not run interactive jobs",
                ));
            }
            // Lines as written: debug information, no optimisation (the last -O wins).
            job.compiler_options.extend(["-g".into(), "-O0".into()]);
        }
        if !job.banned_functions.is_empty() || !job.allowed_functions.is_empty() {
            if !crate::functions::applies_to(&language) {
                return Err(JobError::invalid(
                    if job.banned_functions.is_empty() {
                        "allowed_functions"
                    } else {
                        "banned_functions"
                    },
                    format!(
                        "function lists are checked for C and C++ programs, not {}",
                        language.name
                    ),
                ));
            }
            // Debug information names the file and line of each call.
            if !job.analysis.memcheck {
                job.compiler_options.push("-g".into());
            }
        }
        let layout = Layout::new(&language, &job)?;
        let checker = match &job.checker {
            Checker::Custom(custom) => Some(self.check_helper(custom, "checker")?),
            _ => None,
        };
        let interactor = match &job.interactor {
            Some(custom) => Some(self.check_helper(custom, "interactor")?),
            None => None,
        };
        job.language = language.id.clone();
        Ok(CheckedJob {
            job,
            language,
            limits,
            layout,
            test_limits,
            checker,
            interactor,
        })
    }

    /// A custom checker or an interactor (`role`, the field that holds it): its
    /// language known and installed, its files laid out (with testlib for C++).
    fn check_helper(
        &self,
        custom: &crate::checker::CustomProgram,
        role: &str,
    ) -> Result<CheckedProgram, JobError> {
        let language = self.select(&custom.language, None, None, &format!("{role}.language"))?;
        let mut checker_job = Job {
            language: custom.language.clone(),
            files: custom.files.clone(),
            ..Job::default()
        };
        crate::testlib::provide(&language, &mut checker_job);
        let limits = StageLimits::resolve(
            &language,
            &checker_job,
            &self.config.compile_limits,
            &self.config.checker_limits,
        )
        .map_err(|e| e.within(role))?;
        let layout = Layout::new(&language, &checker_job).map_err(|e| match e {
            JobError::Invalid { message, .. } => {
                JobError::invalid(format!("{role}.source"), message)
            }
            other => other,
        })?;
        Ok(CheckedProgram {
            language,
            limits,
            layout,
        })
    }

    /// `chosen`, when Valgrind is installed where it runs; else, when the job
    /// named no version, the first installed entry of the same language that
    /// has it (memcheck runs the program under the valgrind of its own tree).
    fn with_valgrind(&self, chosen: Arc<Language>, job: &Job) -> Result<Arc<Language>, JobError> {
        let has_valgrind =
            |l: &Language| installation::find_program(l.runtime_root(), "valgrind").is_some();
        if has_valgrind(&chosen) {
            return Ok(chosen);
        }
        let unpinned = job.version.as_deref().is_none_or(|v| v.trim().is_empty())
            && job.runtime.as_deref().is_none_or(str::is_empty);
        if unpinned && let Ok(variants) = self.catalog().variants(&job.language) {
            for variant in variants.into_iter().filter(|v| has_valgrind(v)) {
                if let Ok(found) =
                    self.select(&job.language, None, Some(variant.variant()), "language")
                {
                    return Ok(found);
                }
            }
        }
        Err(JobError::invalid(
            "analysis.memcheck",
            format!(
                "Valgrind is not installed in the runtime '{}' of {}: choose a version whose runtime has it (the host's, when the host has valgrind), or add valgrind to that runtime's packages",
                chosen.variant(),
                chosen.name
            ),
        ))
    }

    /// The entry of `name` that runs the `version` asked for (exact, a prefix
    /// such as `3.13`, or a range such as `>=3.12`): the newest installed one
    /// that matches; without a version, the one marked `default` if installed,
    /// else the newest installed. `field` names the language in errors.
    pub(crate) fn select(
        &self,
        name: &str,
        version: Option<&str>,
        runtime: Option<&str>,
        field: &str,
    ) -> Result<Arc<Language>, JobError> {
        let catalog = self.catalog();
        let mut variants = match catalog.variants(name) {
            Ok(variants) => variants,
            Err(error) if field == "language" => return Err(error),
            Err(error) => return Err(JobError::invalid(field, error.to_string())),
        };
        if let Some(runtime) = runtime.filter(|r| !r.is_empty()) {
            let known: Vec<String> = variants.iter().map(|l| l.variant().to_string()).collect();
            variants.retain(|l| l.variant() == runtime);
            if variants.is_empty() {
                return Err(JobError::invalid(
                    "runtime",
                    format!(
                        "{name} has no entry for the runtime '{runtime}': it has {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        let mut installed: Vec<(Arc<Language>, Option<String>)> = Vec::new();
        let mut first_missing: Option<(Arc<Language>, String)> = None;
        for language in variants {
            let missing = installation::first_missing(language).or_else(|| {
                match self.installation(language) {
                    Installation::Missing { missing } => Some(missing),
                    _ => None,
                }
            });
            match missing {
                Some(missing) => {
                    first_missing.get_or_insert((language.clone(), missing));
                }
                None => {
                    let version = self.installation(language).version().map(str::to_string);
                    installed.push((language.clone(), version));
                }
            }
        }
        if let (true, Some((language, missing))) = (installed.is_empty(), first_missing) {
            return Err(JobError::NotInstalled {
                name: language.name.clone(),
                missing,
                install: language.install_command(),
                field: field.to_string(),
            });
        }
        // Newest first.
        installed.sort_by(|a, b| version_order(b.1.as_deref(), a.1.as_deref()));
        let chosen = match version.map(str::trim).filter(|v| !v.is_empty()) {
            None => installed
                .iter()
                .find(|(l, _)| l.default)
                .or_else(|| installed.first()),
            Some(wanted) => installed
                .iter()
                .find(|(_, v)| crate::version::matches(wanted, v.as_deref().unwrap_or(""))),
        };
        match chosen {
            Some((language, _)) => Ok(language.clone()),
            None if installed.is_empty() => Err(JobError::invalid(
                field,
                format!("no version of {name} can run on this host"),
            )),
            None => {
                let language = &installed[0].0;
                let versions: Vec<&str> = installed
                    .iter()
                    .map(|(_, v)| v.as_deref().unwrap_or("an unknown version"))
                    .collect();
                Err(JobError::VersionUnavailable {
                    name: language.name.clone(),
                    wanted: version.unwrap_or_default().to_string(),
                    installed: versions.join(", "),
                })
            }
        }
    }
}

/// Orders two versions by their numeric parts (`3.13.1` after `3.9.7`); unknown
/// versions first.
pub(crate) fn version_order(a: Option<&str>, b: Option<&str>) -> std::cmp::Ordering {
    let parts = |v: Option<&str>| -> Vec<u64> {
        v.unwrap_or("")
            .split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty())
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    parts(a).cmp(&parts(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_ordered_by_their_numbers() {
        use std::cmp::Ordering::*;
        assert_eq!(version_order(Some("3.13.1"), Some("3.9.7")), Greater);
        assert_eq!(version_order(Some("1.85.0"), Some("1.85.0")), Equal);
        assert_eq!(version_order(None, Some("1")), Less);
        assert_eq!(version_order(Some("21.0.5"), Some("17.0.15")), Greater);
    }
}

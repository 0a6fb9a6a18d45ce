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
        let language = self.usable_language(&job.language, "language")?;
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
        let layout = Layout::new(&language, &job)?;
        if let Some(wanted) = &job.version {
            self.check_version(&language, wanted)?;
        }
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
        let language = self.usable_language(&custom.language, &format!("{role}.language"))?;
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

    /// The catalog entry of `name`, installed; `field` names it in errors.
    pub(crate) fn usable_language(
        &self,
        name: &str,
        field: &str,
    ) -> Result<Arc<Language>, JobError> {
        let language = match self.catalog.get(name) {
            Ok(language) => language.clone(),
            Err(error) if field == "language" => return Err(error),
            Err(error) => return Err(JobError::invalid(field, error.to_string())),
        };
        let missing =
            installation::first_missing(&language).or_else(|| match self.installation(&language) {
                Installation::Missing { missing } => Some(missing),
                _ => None,
            });
        if let Some(missing) = missing {
            return Err(JobError::NotInstalled {
                name: language.name.clone(),
                missing,
                install: language.install_command(),
                field: field.to_string(),
            });
        }
        Ok(language)
    }

    /// Refuses a job that asks for a version this host does not have.
    fn check_version(&self, language: &Language, wanted: &str) -> Result<(), JobError> {
        let installation = self.installation(language);
        let installed = installation.version().unwrap_or("an unknown version");
        if installation::version_matches(wanted, installed) {
            return Ok(());
        }
        Err(JobError::VersionUnavailable {
            name: language.name.clone(),
            wanted: wanted.to_string(),
            installed: installed.to_string(),
        })
    }
}

//! One module per subcommand.

pub mod doctor;
pub mod keys;
pub mod languages;
pub mod run;
pub mod sandbox;
pub mod serve;

/// Exit code when runbox itself fails (bad flags, host problem), as distinct from the
/// program's own exit code.
pub const EXIT_RUNBOX_ERROR: u8 = 125;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use runbox_engine::{Catalog, Engine, EngineConfig};
use runbox_sandbox::{Sandbox, SandboxOptions};

/// Where the catalog comes from: the embedded files plus an operator's directory.
#[derive(Args, Clone, Debug)]
pub struct CatalogArgs {
    /// A directory of language files (`*.toml`) that add to or replace the built-in ones.
    #[arg(long, value_name = "DIR", env = "RUNBOX_LANGUAGES_DIR")]
    pub languages_dir: Option<PathBuf>,
}

impl CatalogArgs {
    /// The catalog these flags describe.
    pub fn catalog(&self) -> anyhow::Result<Catalog> {
        Ok(Catalog::load(self.languages_dir.as_deref())?)
    }
}

/// An engine with its own sandbox of `max_boxes` slots.
pub fn engine(catalog: Catalog, max_boxes: u32) -> anyhow::Result<Engine> {
    let options = SandboxOptions {
        max_boxes,
        ..SandboxOptions::default()
    };
    let config = EngineConfig {
        version_cache: Some(options.state_dir.join("versions")),
        ..EngineConfig::default()
    };
    let sandbox = Sandbox::new(options).context("cannot prepare the sandbox")?;
    Ok(Engine::new(Arc::new(sandbox), catalog, config))
}

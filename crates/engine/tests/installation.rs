//! A language is installed only while everything it needs is there, even when
//! an earlier process remembered its version.

use std::path::Path;
use std::sync::Arc;

use runbox_engine::{Catalog, Engine, EngineConfig, Installation};
use runbox_sandbox::{Sandbox, SandboxOptions};

/// An engine whose catalog has `needy`, a shell language that binds `bound`
/// and needs a file matching `needed`; versions are remembered in `cache`.
fn engine(languages: &Path, cache: &Path, sandbox: &Arc<Sandbox>) -> Engine {
    let catalog = Catalog::load(Some(languages)).unwrap();
    let config = EngineConfig {
        version_cache: Some(cache.to_path_buf()),
        ..EngineConfig::default()
    };
    Engine::new(sandbox.clone(), catalog, config)
}

fn installation(engine: &Engine) -> Installation {
    let language = engine.catalog().get("needy").unwrap().clone();
    engine.installation(&language)
}

#[test]
fn a_remembered_version_does_not_hide_a_missing_bind_or_needed_file() {
    let dir = tempfile::tempdir().unwrap();
    let (languages, cache, bound, needed) = (
        dir.path().join("languages"),
        dir.path().join("versions"),
        dir.path().join("bound"),
        dir.path().join("tools"),
    );
    for d in [&languages, &cache, &bound, &needed] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(needed.join("cc1needy"), "").unwrap();
    std::fs::write(
        languages.join("needy.toml"),
        format!(
            "id = \"needy\"\nname = \"Needy\"\nextensions = [\"needy\"]\npackages = [\"needy\"]\n\
             source_file = \"main.needy\"\nrun = [\"/bin/sh\", \"{{entry}}\"]\n\
             version = [\"/bin/sh\", \"-c\", \"echo 1.2.3\"]\nbinds = [\"{}\"]\n\
             needs_one_of = [\"{}/cc1*\"]\n",
            bound.display(),
            needed.display()
        ),
    )
    .unwrap();
    let sandbox = Arc::new(
        Sandbox::new(SandboxOptions {
            max_boxes: 2,
            ..SandboxOptions::default()
        })
        .unwrap(),
    );
    let first = installation(&engine(&languages, &cache, &sandbox));
    assert_eq!(first.version(), Some("1.2.3"), "{first:?}");

    // Another process, with the version remembered: the needed file is gone.
    std::fs::remove_file(needed.join("cc1needy")).unwrap();
    let without_tool = installation(&engine(&languages, &cache, &sandbox));
    assert!(
        matches!(&without_tool, Installation::Missing { missing } if missing.contains("cc1*")),
        "{without_tool:?}"
    );

    // And with it back but the bound directory gone.
    std::fs::write(needed.join("cc1needy"), "").unwrap();
    std::fs::remove_dir(&bound).unwrap();
    let without_bind = installation(&engine(&languages, &cache, &sandbox));
    assert_eq!(
        without_bind,
        Installation::Missing {
            missing: bound.display().to_string()
        }
    );
}

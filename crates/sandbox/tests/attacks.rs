//! The attack suite (`attack_suite/`) with every box on the host's /usr, the
//! runtime `host`.

mod attack_suite;
mod support;

use runbox_sandbox::BoxConfig;

/// Boxes of this binary use the host's system tree: the configuration as it is.
fn on_system(config: BoxConfig) -> BoxConfig {
    config
}

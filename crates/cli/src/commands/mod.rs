//! One module per subcommand.

pub mod doctor;
pub mod sandbox;

/// Exit code when runbox itself fails (bad flags, host problem), as distinct from the
/// program's own exit code.
pub const EXIT_RUNBOX_ERROR: u8 = 125;

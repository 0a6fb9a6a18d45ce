//! Runtimes: the read-only root filesystems that languages run in.

pub mod oci;

//! Helpers every stage reaches for, kept once: durable file writes, lock files, the warden's
//! private directories, and keeping secrets out of output (scrubbing and fingerprints).

pub mod files;
pub mod secrets;

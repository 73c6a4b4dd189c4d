//! Following log files through rotation, truncation and re-creation ([`tailer`]), and
//! remembering how far each was read ([`checkpoints`]).
//!
//! Receives paths; hands on complete lines, each exactly once and in order, with the identity
//! of the file they came from. Knows nothing of Hermes or of rules. Never sleeps: the caller
//! steps it with `poll(now)`.

pub mod checkpoints;
pub mod tailer;

//! What the warden tells the world: the [`audit`] log of every finding and change, and the
//! [`report`]s of a pass (JSON, table, markdown).
//!
//! Receives the pipeline's values; hands on text and records. Everything that came from a log
//! or auth.json is scrubbed of secrets before it leaves.

pub mod audit;
pub mod report;

//! What the warden tells the world. The stages hand on typed [`events::WardenEvent`]s; the
//! sinks consume them: the [`audit`] log of every finding and change, and the daemon's own
//! [`log`] (alerts join here). [`report`] renders a pass (JSON, table, markdown), and
//! [`metrics`] its credentials' states as Prometheus gauges.
//!
//! Everything that came from a log or auth.json is scrubbed of secrets before it leaves.

pub mod audit;
pub mod events;
pub mod log;
pub mod metrics;
pub mod report;

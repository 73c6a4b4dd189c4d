//! hermes-warden: finds revoked Hermes Agent credentials in the logs and takes them out of rotation.
//!
//! The flow (see the design notes): log bytes are scanned by [`logscan`] with the [`rules`],
//! matches become [`event`]s, [`attribute`] pins each to a credential of the [`auth_store`]
//! snapshot, [`decide`] turns them into actions, [`availability`] and [`compaction`] say what
//! Hermes can use. All of that is pure; reading files happens in [`analysis`] and the commands.

pub mod analysis;
pub mod app;
pub mod attribute;
pub mod auth_store;
pub mod availability;
pub mod cli;
pub mod compaction;
pub mod config;
pub mod decide;
pub mod event;
pub mod hermes_version;
pub mod home;
pub mod logscan;
pub mod payload;
pub mod pyliteral;
pub mod record;
pub mod report;
pub mod rules;
pub mod secrets;
pub mod state;
pub mod tailer;
pub mod watch;

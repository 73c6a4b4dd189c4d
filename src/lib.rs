//! hermes-warden: finds revoked Hermes Agent credentials in the logs and takes them out of rotation.
//!
//! The flow (see the design notes): log bytes are scanned by [`logscan`] with the [`rules`],
//! matches become [`event`]s, [`attribute`] pins each to a credential of the [`auth_store`]
//! snapshot, [`decide`] turns them into actions, [`availability`] and [`compaction`] say what
//! Hermes can use. All of that is pure; reading files happens in [`analysis`] and the commands.
//! [`remedy`] carries the decisions out: marks go into the [`ledger`], then into auth.json
//! through [`auth_edit`] (Hermes's lock, atomic rename) in the form [`dead_mark`] writes and
//! the layout [`pyjson`] reproduces.

pub mod analysis;
pub mod app;
pub mod attribute;
pub mod auth_edit;
pub mod auth_store;
pub mod availability;
pub mod cli;
pub mod compaction;
pub mod config;
pub mod dead_mark;
pub mod decide;
pub mod event;
pub mod hermes_version;
pub mod home;
pub mod ledger;
pub mod logscan;
pub mod payload;
pub mod pyjson;
pub mod pyliteral;
pub mod record;
pub mod remedy;
pub mod report;
pub mod rules;
pub mod secrets;
pub mod state;
pub mod tailer;
pub mod watch;

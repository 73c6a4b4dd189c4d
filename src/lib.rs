//! hermes-warden: finds revoked Hermes Agent credentials in the logs and takes them out of rotation.
//!
//! The modules follow the flow of data (see the design notes):
//!
//! ```text
//! follow (tail) -> read (parse) -> rules -> pool (attribute, decide) -> remediate (apply)
//!                                                                     -> observe (audit, reports)
//! ```
//!
//! [`hermes`] says what the installed Hermes does with a pool entry; [`shared`] holds the
//! helpers every stage reaches for. Two drivers run the same pipeline: [`pass`] reads everything
//! once (`scan`, `status`), [`watch`] follows the logs as a daemon. [`app`] turns the command
//! line ([`cli`], [`config`]) into settings, runs a driver, and decides the exit status.

pub mod hermes;
pub mod shared;

pub mod follow;
pub mod observe;
pub mod pool;
pub mod read;
pub mod remediate;
pub mod rules;

pub mod pass;
pub mod watch;

pub mod app;
pub mod cli;
pub mod config;

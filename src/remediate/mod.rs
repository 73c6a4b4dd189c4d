//! Carrying decisions out: a dead mark goes into the [`ledger`] first, then into auth.json
//! through [`auth_edit`] (Hermes's lock, a fresh read, an atomic rename), changed by
//! [`dead_mark`] in the form the installed Hermes honours and written by [`pyjson`] byte for
//! byte as Python's `json.dumps(indent=2)` would. [`remedy`] is the one way a mark is made,
//! kept, or undone.
//!
//! Receives planned actions; hands on their results and the changes it made. Guarantees: never
//! a write without the lock, never a write of a file it could not parse, never a mark the
//! installed Hermes would ignore, and no mark lost across crashes.

pub mod auth_edit;
pub mod dead_mark;
pub mod ledger;
pub mod pyjson;
pub mod remedy;

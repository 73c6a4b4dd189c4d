//! Hermes itself, as the warden must know it: where a home keeps its files ([`home`]), which
//! version is installed ([`version`]), and what that version honours ([`semantics`]): the
//! statuses a pool entry can have, when an entry is usable, and the form a dead mark must take.
//!
//! Receives a path or a version; hands on plain facts. Every stage that asks "what would Hermes
//! do" asks here, so writing a mark and judging it can never disagree.

pub mod home;
pub mod semantics;
pub mod version;

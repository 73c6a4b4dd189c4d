//! The credential pools: what auth.json holds ([`snapshot`]), which credential an event is
//! about ([`attribute`]), what should be done ([`decide`]) and whether context compaction can
//! still work ([`compaction`]).
//!
//! Receives events and snapshots; hands on attributions, planned actions and risks. Pure: the
//! snapshot is read once at the edge and passed in, and secrets never get past it (only their
//! fingerprints do).

pub mod attribute;
pub mod compaction;
pub mod decide;
pub mod snapshot;

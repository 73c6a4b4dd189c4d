//! Reading the logs: bytes in, [`event::Event`]s out.
//!
//! The [`scanner`] finds candidate lines with the rules' literal prefilter and splits a
//! [`record`] into header and message; the rules match it; Python-literal error payloads are
//! parsed by [`payload`] and [`pyliteral`]; a match becomes an [`event::Event`] placed in its file,
//! line, profile and moment. Pure: no I/O, bounded memory whatever the input.

pub mod event;
pub mod payload;
pub mod pyliteral;
pub mod record;
pub mod scanner;

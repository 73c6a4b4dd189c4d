//! One integration test binary (like ripgrep's): each module covers one area, each test works
//! in its own temporary directory.

mod bad_input;
mod cli;
mod dashboards;
mod hermes_matrix;
mod parser_fuzz;
mod real_hermes;
mod remediation;
mod reports;
mod secrets;
mod state_files;
mod tailer_model;
mod util;
mod watch;

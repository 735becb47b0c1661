//! The `aplaunch` command line: argument parsing (clap), output (human and JSON), exit
//! codes, man pages and completions, over the libraries `launcher`, `vfio`, `pv` and
//! `host`. Only the binary and its tests use this crate; embedders use `launcher`.

pub mod cli;

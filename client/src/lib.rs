//! # sealchain-client
//!
//! The library behind the `sealchain` command: [`api::NodeClient`] speaks
//! the node's REST API (PROTOCOL §7) over awc; [`cli`] is the command line
//! and [`commands`] holds one module per subcommand.
//!
//! [`witness`] is a transparency-log witness (C2SP tlog-witness), served by
//! `sealchain witness serve`.
//!
//! Every command that talks to a node starts with [`connect::connect`],
//! which fetches `GET /v1/node` and checks the node's keys against the pin
//! (`--node-key`, or the pin file written on first contact).

#![forbid(unsafe_code)]

pub mod api;
pub mod audit_checkpoint;
pub mod cli;
pub mod commands;
pub mod connect;
pub mod duration;
pub mod files;
pub mod floor;
pub mod global;
pub mod log_memory;
pub mod output;
pub mod pair_sort;
pub mod pin;
pub mod progress;
pub mod receipts;
pub mod sealing;
pub mod signals;
pub mod stats;
pub mod trusted_log;
pub mod witness;
pub mod witnessed;

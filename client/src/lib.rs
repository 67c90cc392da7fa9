//! # sealchain-client
//!
//! The library behind the `sealchain` command: [`api::NodeClient`] speaks
//! the node's REST API (PROTOCOL §7) over awc; the commands build on it.

#![forbid(unsafe_code)]

pub mod api;

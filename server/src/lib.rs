//! The Amar server: the `amar` command, config loading, engine assembly and the
//! protocol front ends.
//!
//! This crate wires the libraries together and owns everything that touches a socket:
//! the Postgres wire protocol ([`pgwire`]), Arrow Flight SQL ([`flight`]), and the
//! HTTP operations port ([`http`]: health, readiness, [`metrics`]). The engine ([`engine`]) is the one path from SQL to Arrow batches
//! that every front end shares. [`serve::start`] runs a server in-process, as `amar
//! serve` does and as the tests do on port 0.

pub mod audit;
pub mod cli;
pub mod config;
pub mod demo;
pub mod display;
pub mod engine;
pub mod flight;
pub mod http;
pub mod linger;
pub mod metrics;
pub mod pgwire;
pub mod plugins;
pub mod portal;
pub mod release_cli;
pub mod report;
pub mod serve;
pub mod tls;

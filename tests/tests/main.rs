//! Amar's end-to-end tests, one binary: every module talks to a server started
//! in-process on port 0, through a real client.

mod support;

mod audit;
mod auth;
mod config;
mod databases;
mod dbeaver;
mod drop;
mod flight;
mod hardening;
mod hostile;
mod indicators;
mod leaks;
mod metabase;
mod npgsql;
mod operations;
mod pgwire_errors;
mod pgwire_protocol;
mod pgwire_types;
mod plugins;
mod policies;
mod portal;
mod psql;
mod releases;
mod report;
mod revocation;
mod slt;
mod tls;

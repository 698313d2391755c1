//! dockling: a small but real container engine, built to be looked into.
//!
//! The binary (`src/main.rs`) only parses the command line and maps errors to Docker's exit
//! codes; everything else lives here. See `ARCHITECTURE.md` for the map: the kernel seam
//! ([`sys`]), the trace ([`trace`]), plans of steps ([`plan`]), and one module per subsystem.

#![warn(missing_docs, unreachable_pub)]

pub mod cgroups;
pub mod cli;
pub mod commands;
pub mod config;
pub mod container;
pub mod error;
pub mod fault;
pub mod files;
pub mod host;
pub mod image;
pub mod lab;
pub mod layers;
pub mod lessons;
pub mod network;
pub mod plan;
pub mod registry;
pub mod runtime;
pub mod spec;
pub mod specconv;
pub mod sys;
pub mod template;
pub mod trace;

#[cfg(test)]
mod testutil;

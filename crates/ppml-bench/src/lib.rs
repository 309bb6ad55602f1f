//! `ppml-bench`: the comparison behind `ppml bench`.
//!
//! For every requested model and backend it measures, in one run and on the same images:
//! accuracy and agreement with plain inference, single-image latency (median and p95),
//! throughput at a batch suited to the backend, both as ratios to plain, communication, setup
//! cost apart from the online cost, and peak memory. [`registry`] is the one place that knows
//! which backends exist; the CLI uses it too. [`report`] writes the results as a table, JSON
//! and CSV, and [`charts`] draws them.

pub mod charts;
pub mod deployed;
mod error;
#[cfg(test)]
mod fixtures;
pub mod registry;
pub mod report;
mod run;

pub use deployed::{DeployedConfig, DeployedResult};
pub use error::BenchError;
pub use registry::BackendKind;
pub use run::{run, BenchConfig, PairResult, Report};

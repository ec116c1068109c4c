//! tollgate: a Kubernetes operator that turns declarative `Project`s into infrastructure
//! through Terraform, and applies only the exact plan a person (or policy) approved.
//!
//! The pure core (`catalog`, `render`, `plan`, `cost`) knows nothing of Kubernetes; `api`
//! holds the CRD types and `cli` the thin command-line shell.
#![forbid(unsafe_code)]

pub mod admission;
pub mod api;
pub mod audit;
pub mod catalog;
pub mod cli;
pub mod cloud;
pub mod cost;
pub mod credentials;
pub mod dashboard;
pub mod drift;
pub mod fair;
pub mod gate;
pub mod health;
pub mod leader;
pub mod manifest;
pub mod markup;
pub mod notify;
pub mod plan;
pub mod policy;
pub mod pricing_refresh;
pub mod reconcile;
pub mod redact;
pub mod render;
pub mod retention;
pub mod runner_job;
pub mod seal;
pub mod serve;
pub mod sla;
pub mod spend;
pub mod state;
pub mod telemetry;
pub mod terraform;

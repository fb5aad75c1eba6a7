//! ecrd: Amazon Elastic Container Registry on one's own machine.
//!
//! One port serves the ECR control plane (`POST /`, awsJson1_1 with SigV4)
//! and, in later layers, the registry (`/v2/`). The crate is shaped as
//! protocol adapters (`api/`) over one domain (`ecr/`) over storage traits
//! (`store/`); see `shared/DESIGN.md`.

pub mod api;
pub mod auth;
pub mod body_rate;
pub mod budget;
pub mod config;
pub mod console;
pub mod digest;
pub mod ecr;
pub mod fixture;
pub mod health_check;
pub mod listener;
pub mod log_format;
pub mod log_writer;
pub mod metrics;
pub mod oci;
pub mod progress;
pub mod public_api;
pub mod request_log;
pub mod seed;
pub mod server;
pub mod snapshot;
pub mod state;
pub mod store;
pub mod sts;
#[doc(hidden)]
pub mod test_support;
pub mod tls;
pub mod upstream;

pub use config::ServeConfig;
pub use server::{router, Server};
pub use state::AppState;

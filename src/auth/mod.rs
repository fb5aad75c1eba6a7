//! Authentication of both planes: SigV4 for the control plane, ECR registry
//! passwords (Basic auth) for `/v2/`, and the credential table behind both.

pub mod credentials;
pub mod sigv4;
pub mod token;

//! Servers the test suites start for themselves (not part of ecrd's
//! behaviour; public so the integration tests share one copy with the unit
//! tests).

pub mod ports;
pub mod postgres;
pub mod s3;

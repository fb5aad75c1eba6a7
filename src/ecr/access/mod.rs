//! Access control: IAM-style policies, parsed and validated once, and the
//! one evaluator every domain operation asks before it reads or writes.
//!
//! This module owns the policy language and the decision only; it does no
//! I/O and stores nothing. Callers hand it the caller (`Principal`), the
//! action (`ecr:DescribeImages`), the resource ARN, the request facts
//! conditions may test (`Context`), the caller's identity policy and the
//! resource's policies, and get back a `Decision` that carries AWS's denial
//! message.
//!
//! The rules are those of the IAM User Guide: "Policy evaluation logic",
//! "Policy evaluation for requests within a single account",
//! "Cross-account policy evaluation logic", "IAM JSON policy elements
//! reference" and "IAM JSON policy elements: Condition operators", with the
//! element rules Amazon ECR applies to repository and registry policies.

pub mod actions;
pub mod conditions;
pub mod evaluate;
pub mod glob;
pub mod policy;

pub use conditions::Context;
pub use evaluate::{evaluate, Decision, Principal};
pub use policy::{Policy, PolicyError, PolicyKind};

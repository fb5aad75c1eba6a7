//! Lifecycle policy documents and IAM policy documents of every kind.
#![no_main]

use ecrd::ecr::access::policy::{Policy, PolicyKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = ecrd::ecr::lifecycle::Policy::parse(text);
    for kind in [
        PolicyKind::Identity,
        PolicyKind::Repository,
        PolicyKind::Registry,
    ] {
        let _ = Policy::parse(text, kind);
    }
});

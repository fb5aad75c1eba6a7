//! The awsJson1_1 decoding of request bodies into the model's input shapes,
//! with the model's constraint checks, for the operations whose inputs
//! carry the most structure.
#![no_main]

use ecrd::api::model::{self, Validate};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;

fn check<T: DeserializeOwned + Validate>(bytes: &[u8]) {
    if let Ok(input) = serde_json::from_slice::<T>(bytes) {
        let mut violations = Vec::new();
        input.validate("", &mut violations);
        for v in &violations {
            let _ = v.message();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    match pick % 8 {
        0 => check::<model::CreateRepositoryRequest>(bytes),
        1 => check::<model::PutImageRequest>(bytes),
        2 => check::<model::PutLifecyclePolicyRequest>(bytes),
        3 => check::<model::BatchDeleteImageRequest>(bytes),
        4 => check::<model::DescribeImagesRequest>(bytes),
        5 => check::<model::PutReplicationConfigurationRequest>(bytes),
        6 => check::<model::CreateRepositoryCreationTemplateRequest>(bytes),
        _ => check::<model::TagResourceRequest>(bytes),
    }
});

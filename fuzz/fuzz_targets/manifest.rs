//! Manifest and index parsing, with and without a declared media type.
#![no_main]

use libfuzzer_sys::fuzz_target;

const DECLARED: [Option<&str>; 5] = [
    None,
    Some("application/vnd.oci.image.manifest.v1+json"),
    Some("application/vnd.oci.image.index.v1+json"),
    Some("application/vnd.docker.distribution.manifest.v2+json"),
    Some("application/vnd.docker.distribution.manifest.list.v2+json"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let declared = DECLARED[usize::from(pick) % DECLARED.len()];
    if let Ok(parsed) = ecrd::ecr::manifest::parse(bytes, declared) {
        let _ = parsed.is_index();
        let _ = parsed.required_blobs();
        let _ = parsed.layer_bytes();
    }
});

//! The `/v2/` path parser and the name, digest and reference grammars it
//! hands out: any string is a route or `Unknown`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let route = ecrd::oci::path::Route::parse(text);
    let _ = route.kind();
    if let Some(repo) = route.repository() {
        let _ = ecrd::oci::path::repository(repo);
    }
    let _ = ecrd::oci::path::repository(text);
    let _ = ecrd::oci::path::digest(text);
    let _ = ecrd::oci::path::reference(text);
    let _ = ecrd::oci::path::upload_id(text);
});

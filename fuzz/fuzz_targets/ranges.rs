//! The `Range` header of a blob GET and the `Content-Range` (with
//! `Content-Length`) of an upload chunk: any header bytes are a range, the
//! whole blob, a refusal or an error, never a panic, and a range served is
//! always inside the blob.
//!
//! Input: 8 bytes of blob size (little-endian), then the header value, a
//! newline, and an optional `Content-Length` value.
#![no_main]

use ecrd::oci::blobs::{byte_range, ByteRange};
use http::{header, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (size, rest) = data.split_at(8);
    let mut size_bytes = [0u8; 8];
    size_bytes.copy_from_slice(size);
    // Small sizes too, so the edges of a blob are reached.
    let size = match u64::from_le_bytes(size_bytes) {
        s if s & 1 == 0 => s >> 1,
        s => (s >> 1) % 4096,
    };
    let (value, length) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return;
    };
    match byte_range(Some(&value), size) {
        ByteRange::Part(start, end) => {
            assert!(start < end && end <= size, "{value:?} of {size}: {start}..{end}")
        }
        ByteRange::Whole | ByteRange::Unsatisfiable => {}
    }
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_RANGE, value.clone());
    if let Some(length) = length.and_then(|l| HeaderValue::from_bytes(l).ok()) {
        headers.insert(header::CONTENT_LENGTH, length);
    }
    let _ = ecrd::oci::uploads::chunk_offset(&headers);
});

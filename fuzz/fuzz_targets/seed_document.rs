//! The seed file reader (YAML 1.2 and JSON with positions): any text is a
//! document or a syntax error with a position, never a panic; every path
//! of a document has a position.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The paths `Document::position` is asked about, as the seed checks name
/// them (`accounts[0].regions`), to a bounded depth.
fn paths(value: &Value, prefix: String, depth: usize, out: &mut Vec<String>) {
    if depth == 0 || out.len() > 256 {
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                paths(child, path.clone(), depth - 1, out);
                out.push(path);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let path = format!("{prefix}[{i}]");
                paths(child, path.clone(), depth - 1, out);
                out.push(path);
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ecrd::seed::document::Document::parse(text) {
        Ok(document) => {
            let mut found = Vec::new();
            paths(&document.value, String::new(), 8, &mut found);
            for path in found {
                assert!(document.position(&path).is_some(), "no position for {path}");
            }
            let _ = document.position("no.such[3].path");
        }
        Err(error) => {
            let _ = (error.position, error.message);
        }
    }
});

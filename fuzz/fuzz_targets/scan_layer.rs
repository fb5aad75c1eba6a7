//! The scanner's layer reader and inventory: arbitrary bytes as one plain
//! layer, as the same bytes gzipped (so the tar reader behind the
//! decompressor is reached), or split into two layers (so one layer's
//! whiteouts and links act on another's files). A layer is read or
//! refused, never a panic, a hang or unbounded memory.
//!
//! Input: one byte choosing the mode, then the layer bytes.
#![no_main]

use std::io::{Cursor, Write};

use libfuzzer_sys::fuzz_target;

fn inventory(layers: Vec<Vec<u8>>) {
    let layers = layers.into_iter().map(|l| Ok(Cursor::new(l)));
    let _ = ecrd::ecr::scan::inventory::inventory(layers);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => inventory(vec![bytes.to_vec()]),
        1 => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            if gz.write_all(bytes).is_err() {
                return;
            }
            let Ok(gz) = gz.finish() else {
                return;
            };
            inventory(vec![gz]);
        }
        2 => {
            // Split on a tar block boundary when there is one.
            let at = (bytes.len() / 2) & !511;
            inventory(vec![bytes[..at].to_vec(), bytes[at..].to_vec()]);
        }
        _ => {
            let _ = ecrd::ecr::scan::layers::go_build_info(Cursor::new(bytes));
        }
    }
});

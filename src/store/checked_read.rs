//! Checking a whole-blob read as it streams: every chunk is hashed, and the
//! last one is held back until the digest is known. A blob whose content no
//! longer has its digest therefore never goes out whole: the response stops
//! short of its `Content-Length` and the client sees a broken transfer,
//! never a complete wrong blob. Shared by the disk store (`disk_read`) and
//! the S3 store (`s3_blobs`).

use bytes::Bytes;

use crate::digest::{Digest, Hasher};

/// The running check of one whole read.
pub struct HoldBack {
    expected: Digest,
    hasher: Hasher,
    /// The chunk read last, not yet sent.
    pending: Option<Bytes>,
}

impl HoldBack {
    pub fn new(expected: Digest) -> Self {
        HoldBack {
            hasher: Hasher::new(expected.algorithm()),
            expected,
            pending: None,
        }
    }

    /// Takes the next chunk; returns the one before it, now safe to send.
    /// Empty chunks are dropped, so the held-back chunk always carries bytes
    /// when there are any.
    pub fn push(&mut self, chunk: Bytes) -> Option<Bytes> {
        if chunk.is_empty() {
            return None;
        }
        self.hasher.update(&chunk);
        self.pending.replace(chunk)
    }

    /// At the end of the content: the last chunk when the digest matches
    /// (None for an empty blob), else the digest the content has.
    pub fn finish(self) -> Result<Option<Bytes>, Digest> {
        let computed = self.hasher.finish();
        if computed == self.expected {
            Ok(self.pending)
        } else {
            Err(computed)
        }
    }

    pub fn expected(&self) -> &Digest {
        &self.expected
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_last_chunk_waits_for_the_verdict() {
        let content = b"abcdef";
        let mut check = HoldBack::new(Digest::sha256_of(content));
        assert_eq!(check.push(Bytes::from_static(b"abc")), None);
        assert_eq!(check.push(Bytes::new()), None);
        assert_eq!(
            check.push(Bytes::from_static(b"def")),
            Some(Bytes::from_static(b"abc"))
        );
        assert_eq!(check.finish().unwrap(), Some(Bytes::from_static(b"def")));

        let mut check = HoldBack::new(Digest::sha256_of(content));
        check.push(Bytes::from_static(b"abcdeX"));
        assert_eq!(check.finish(), Err(Digest::sha256_of(b"abcdeX")));

        let check = HoldBack::new(Digest::sha256_of(b""));
        assert_eq!(check.finish().unwrap(), None);
    }
}

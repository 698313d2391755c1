//! A reader that hashes what passes through it (sha256): the digest of a blob, a layer or a
//! file's content is computed while it is copied, never by reading it twice.

use std::io::Read;

use sha2::{Digest as _, Sha256};

/// Hashes what is read through it: `hash` holds the sha256 of every byte `inner` gave.
pub(crate) struct Hashing<R> {
    pub(crate) inner: R,
    pub(crate) hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

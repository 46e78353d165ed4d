//! A writer that hashes what passes through it: the SHA-256 a manifest
//! declares is computed while the content is written, not in a second pass.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// Flushes and returns the lowercase hex SHA-256 of everything written.
    pub fn finish(mut self) -> io::Result<String> {
        self.inner.flush()?;
        Ok(hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what passes through it: the TTP hashes a sealed
/// file (the ledger's identity of a delivery) in the pass that verifies it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// Reads what is left and returns the lowercase hex SHA-256 of
    /// everything read (the hash starts over after it).
    pub fn finish(&mut self) -> io::Result<String> {
        io::copy(self, &mut io::sink())?;
        Ok(hex::encode(std::mem::take(&mut self.hasher).finalize()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

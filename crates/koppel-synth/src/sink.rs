//! Buffered CSV output with a background writer.
//!
//! Rows are assembled in a byte buffer of a few MiB; full buffers go to a
//! writer thread. Copying into the page cache costs about as much kernel time
//! as formatting costs user time, so handing it to the second core roughly
//! halves the wall time of the 18-million-row payroll year. Buffers come back
//! through a return channel and are reused.

use crate::error::SynthError;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

const FLUSH_AT: usize = 4 << 20;
const CAPACITY: usize = FLUSH_AT + (64 << 10);
/// Buffers in flight: one being written, one queued.
const QUEUED: usize = 2;

/// Where a file is written until it is complete: a dot-file beside it, so
/// a failed run never leaves a truncated file under a delivery's name.
pub(crate) fn partial_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}

pub(crate) struct CsvSink {
    path: PathBuf,
    partial: PathBuf,
    finished: bool,
    buf: Vec<u8>,
    rows: u64,
    to_writer: Option<SyncSender<Vec<u8>>>,
    spare: Receiver<Vec<u8>>,
    writer: Option<JoinHandle<std::io::Result<()>>>,
}

impl CsvSink {
    /// Creates the file and writes the header row.
    pub(crate) fn create(path: &Path, delimiter: u8, header: &[&str]) -> Result<Self, SynthError> {
        let partial = partial_path(path);
        let mut file = File::create(&partial).map_err(|e| SynthError::io(&partial, e))?;
        let (to_writer, from_producer) = sync_channel::<Vec<u8>>(QUEUED);
        let (return_spare, spare) = sync_channel::<Vec<u8>>(QUEUED + 1);
        let writer = std::thread::Builder::new()
            .name("koppel-synth-writer".into())
            .spawn(move || -> std::io::Result<()> {
                for mut chunk in from_producer {
                    file.write_all(&chunk)?;
                    chunk.clear();
                    // The producer may already have finished; a spare buffer
                    // nobody takes is simply dropped.
                    let _ = return_spare.try_send(chunk);
                }
                file.flush()
            })
            .map_err(|e| SynthError::io(path, e))?;
        let mut buf = Vec::with_capacity(CAPACITY);
        for (i, name) in header.iter().enumerate() {
            if i > 0 {
                buf.push(delimiter);
            }
            buf.extend_from_slice(name.as_bytes());
        }
        buf.push(b'\n');
        Ok(CsvSink {
            path: path.to_path_buf(),
            partial,
            finished: false,
            buf,
            rows: 0,
            to_writer: Some(to_writer),
            spare,
            writer: Some(writer),
        })
    }

    #[inline]
    pub(crate) fn line(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Terminates the row being built.
    #[inline]
    pub(crate) fn end_row(&mut self) -> Result<(), SynthError> {
        self.buf.push(b'\n');
        self.rows += 1;
        if self.buf.len() >= FLUSH_AT {
            self.hand_over()?;
        }
        Ok(())
    }

    fn hand_over(&mut self) -> Result<(), SynthError> {
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CAPACITY));
        let full = std::mem::replace(&mut self.buf, next);
        let sent = self
            .to_writer
            .as_ref()
            .is_some_and(|sender| sender.send(full).is_ok());
        if sent {
            Ok(())
        } else {
            // The writer stopped: its error says why.
            Err(self.join_writer().err().unwrap_or_else(|| {
                SynthError::io(&self.path, std::io::Error::other("file writer stopped"))
            }))
        }
    }

    fn join_writer(&mut self) -> Result<(), SynthError> {
        self.to_writer = None;
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        match writer.join() {
            Ok(result) => result.map_err(|e| SynthError::io(&self.path, e)),
            Err(_) => Err(SynthError::io(
                &self.path,
                std::io::Error::other("file writer thread panicked"),
            )),
        }
    }

    /// Writes what is left, waits for the file to be complete and returns the
    /// number of data rows.
    pub(crate) fn finish(mut self) -> Result<u64, SynthError> {
        if !self.buf.is_empty() {
            self.hand_over()?;
        }
        self.join_writer()?;
        std::fs::rename(&self.partial, &self.path).map_err(|e| SynthError::io(&self.path, e))?;
        self.finished = true;
        Ok(self.rows)
    }
}

impl Drop for CsvSink {
    /// An abandoned sink (an error elsewhere) still stops its thread.
    fn drop(&mut self) {
        self.to_writer = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        if !self.finished {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

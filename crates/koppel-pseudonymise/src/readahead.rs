//! A file read ahead on a thread of its own.
//!
//! Stage 2 parses a sealed delivery on one core as it decrypts it; read
//! straight from the file, every block the page cache does not hold stalls
//! that core for the disk, so a cold sealed file cost its parse time plus
//! its read time (14 s of a sector run's 70 s stage). Read ahead, the disk
//! works while the core parses, and the stage takes the longer of the two.

use std::fs::File;
use std::io::{self, Read};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, channel, sync_channel};

/// Bytes per block read ahead.
const BLOCK: usize = 4 << 20;
/// Blocks read ahead of the reader at most (so at most `DEPTH + 2` blocks
/// of memory per file: the queue, the one being filled, the one read).
const DEPTH: usize = 4;

/// Reads a file sequentially, [`DEPTH`] blocks ahead of its consumer. A
/// read error is handed to the consumer in its place in the sequence; the
/// thread ends at the end of the file or when the reader is dropped.
pub(crate) struct ReadAhead {
    blocks: Receiver<io::Result<Vec<u8>>>,
    /// Used blocks go back to the thread to be filled again.
    spare: Sender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl ReadAhead {
    pub fn new(file: File) -> io::Result<ReadAhead> {
        let (filled, blocks) = sync_channel(DEPTH);
        let (spare, spares) = channel();
        std::thread::Builder::new()
            .name("koppel-read-ahead".into())
            .spawn(move || fill(file, filled, spares))?;
        Ok(ReadAhead {
            blocks,
            spare,
            current: Vec::new(),
            pos: 0,
            ended: false,
        })
    }
}

fn fill(mut file: File, filled: SyncSender<io::Result<Vec<u8>>>, spares: Receiver<Vec<u8>>) {
    loop {
        let mut block = match spares.try_recv() {
            Ok(block) => block,
            Err(TryRecvError::Empty) => vec![0; BLOCK],
            // The reader is gone.
            Err(TryRecvError::Disconnected) => return,
        };
        block.resize(BLOCK, 0);
        let mut len = 0;
        while len < BLOCK {
            match file.read(&mut block[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = filled.send(Err(e));
                    return;
                }
            }
        }
        block.truncate(len);
        // An empty block is the end of the file; a full queue waits here,
        // and a reader that is gone ends the thread.
        if filled.send(Ok(block)).is_err() || len == 0 {
            return;
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.ended {
                return Ok(0);
            }
            match self.blocks.recv() {
                Ok(Ok(block)) if block.is_empty() => self.ended = true,
                Ok(Ok(block)) => {
                    let used = std::mem::replace(&mut self.current, block);
                    self.pos = 0;
                    if used.capacity() > 0 {
                        let _ = self.spare.send(used);
                    }
                }
                Ok(Err(e)) => {
                    self.ended = true;
                    return Err(e);
                }
                // The thread ended without saying so (it panicked): the
                // stream is cut, which a sealed file's last chunk detects;
                // say so rather than pass it off as the end.
                Err(_) => {
                    self.ended = true;
                    return Err(io::Error::other("reading ahead stopped before the end"));
                }
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_file_exactly_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 12_345] {
            let path = dir.path().join(format!("f{len}"));
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            std::fs::write(&path, &bytes).unwrap();
            let mut reader = ReadAhead::new(File::open(&path).unwrap()).unwrap();
            // Odd read sizes cross block boundaries at every offset.
            let mut back = Vec::new();
            let mut piece = vec![0u8; 65_537];
            loop {
                let n = reader.read(&mut piece).unwrap();
                if n == 0 {
                    break;
                }
                back.extend_from_slice(&piece[..n]);
            }
            assert_eq!(back.len(), bytes.len(), "{len}");
            assert!(back == bytes, "{len}");
            assert_eq!(reader.read(&mut piece).unwrap(), 0, "stays at the end");
        }
    }
}

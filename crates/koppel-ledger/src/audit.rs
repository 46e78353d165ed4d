//! The audit trail: an append-only JSON-lines file whose lines are chained
//! by SHA-256.
//!
//! Input: [`AuditEvent`]s (time, actor, action, subject, details).
//! Output: one line per event in the trail file, a `<trail>.head` sidecar,
//! and for readers the verified [`AuditEntry`]s or the first fault found.
//!
//! # Format
//!
//! Each line is one compact JSON object with the fields, in this order,
//! `seq` (1, 2, ...), `time` (RFC 3339 UTC, whole seconds), `actor`,
//! `action`, `subject`, `details` (a JSON object) and
//! `prev`: the hex SHA-256 of the previous line's exact bytes without its
//! newline, or 64 zeros on the first line. An edited line therefore breaks
//! the next line's `prev`; a removed, inserted or moved line breaks `seq`
//! or `prev` where it happened.
//!
//! Removing lines from the *end* leaves a valid chain, so every append also
//! replaces `<trail>.head` (temporary file, fsync, rename) with
//! `{"seq":N,"hash":"<SHA-256 of line N>"}`; [`AuditTrail::verify`] checks
//! that the chain ends exactly there. The head is an anchor against
//! accidents and careless edits, not against someone who rewrites the whole
//! file and the head: for that, copy [`VerifyReport::last_hash`] elsewhere.
//!
//! An append is one `write` of the line and its newline, then `fsync`, then
//! the head. A crash between the two leaves a trail one line ahead of its
//! head, and a crash during the write a last line without newline; both are
//! reported (and refused by [`AuditTrail::open`]) for the operator to look
//! at, rather than repaired silently.
//!
//! # Concurrency
//!
//! One writer: [`AuditTrail::open`] holds an exclusive advisory lock on
//! `<trail>.lock` for as long as the value lives, and a second writer gets
//! [`AuditError::Locked`]. Each append holds an exclusive lock on the trail
//! itself while it writes line and head; [`AuditTrail::verify`] and
//! [`AuditTrail::read`] take a shared lock on the trail while they read, so
//! they never see half an append. The locks are advisory (`flock`): they
//! order Koppel processes, not other programs.
//!
//! Nothing here may carry an identifier, a pseudonym or key bytes: subjects
//! are delivery ids, run ids, key `id:version` labels and release paths,
//! details hold counts, ids and hashes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::time;

/// `prev` of the first line.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Error)]
pub enum AuditError {
    #[error("{}: cannot read or write", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}, line {line}: {what}", path.display())]
    Line {
        path: PathBuf,
        line: u64,
        what: String,
    },
    #[error("{}: {what}", path.display())]
    Head { path: PathBuf, what: String },
    #[error(
        "{}: another process is writing to this audit trail (it holds {})",
        path.display(),
        lock.display()
    )]
    Locked { path: PathBuf, lock: PathBuf },
    #[error("{}: cannot append: {what}", path.display())]
    Invalid { path: PathBuf, what: String },
    #[error(
        "{}: an earlier append failed part-way; reopen the trail so that it is verified first",
        path.display()
    )]
    Poisoned { path: PathBuf },
}

impl AuditError {
    /// The line the fault was found on, if it is about one line.
    pub fn line(&self) -> Option<u64> {
        match self {
            AuditError::Line { line, .. } => Some(*line),
            _ => None,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Something that happened, as the caller reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub time: DateTime<Utc>,
    /// Who: `operator:<name>` or `daemon`.
    pub actor: String,
    /// What, as `<area>.<verb>`: `delivery.registered`, `run.started`, ...
    pub action: String,
    /// What it concerns: a delivery id, run id, key `id:version`, path.
    pub subject: String,
    /// A JSON object of counts, ids and hashes.
    pub details: serde_json::Value,
}

/// One verified line of the trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub seq: u64,
    #[serde(serialize_with = "time::serialize")]
    pub time: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: serde_json::Value,
    /// SHA-256 of the previous line.
    pub prev: String,
    /// SHA-256 of this line (not stored in the line; the next line's
    /// `prev`, or the head's hash).
    pub hash: String,
}

/// The outcome of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Number of entries (the last `seq`).
    pub entries: u64,
    /// SHA-256 of the last line, [`GENESIS_HASH`] for an empty trail.
    pub last_hash: String,
}

/// A line as written. Field order is the line's byte order.
#[derive(Serialize)]
struct LineOut<'a> {
    seq: u64,
    time: &'a str,
    actor: &'a str,
    action: &'a str,
    subject: &'a str,
    details: &'a serde_json::Value,
    prev: &'a str,
}

/// A line as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn {
    seq: u64,
    time: String,
    actor: String,
    action: String,
    subject: String,
    details: serde_json::Value,
    prev: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Head {
    seq: u64,
    hash: String,
}

/// The sidecar that anchors the end of the chain: `<trail>.head`.
pub fn head_path(trail: &Path) -> PathBuf {
    sidecar(trail, ".head")
}

fn lock_path(trail: &Path) -> PathBuf {
    sidecar(trail, ".lock")
}

fn sidecar(trail: &Path, suffix: &str) -> PathBuf {
    let mut name = trail.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The audit trail, open for appending.
#[derive(Debug)]
pub struct AuditTrail {
    path: PathBuf,
    file: File,
    /// Held (locked) for the lifetime of the writer.
    _lock: File,
    entries: u64,
    last_hash: String,
    poisoned: bool,
}

impl AuditTrail {
    /// Opens the trail at `path` for appending, creating it if missing.
    /// The whole existing trail is verified first (as by
    /// [`AuditTrail::verify`]); a broken trail is refused.
    pub fn open(path: &Path) -> Result<AuditTrail, AuditError> {
        let lock_file = lock_path(path);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_file)
            .map_err(io_err(&lock_file))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(AuditError::Locked {
                    path: path.to_owned(),
                    lock: lock_file,
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_file)(e)),
        }

        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io_err(path))?;
        if !existed {
            file.sync_all().map_err(io_err(path))?;
            sync_parent(path)?;
        }
        file.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
        let report = scan(path, BufReader::new(&file), |_| {})?;
        Ok(AuditTrail {
            path: path.to_owned(),
            file,
            _lock: lock,
            entries: report.entries,
            last_hash: report.last_hash,
            poisoned: false,
        })
    }

    /// The trail file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of entries so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// SHA-256 of the last line ([`GENESIS_HASH`] when empty).
    pub fn last_hash(&self) -> &str {
        &self.last_hash
    }

    /// Appends one event: the line is written and fsynced, then the head.
    pub fn append(&mut self, event: &AuditEvent) -> Result<AuditEntry, AuditError> {
        if self.poisoned {
            return Err(AuditError::Poisoned {
                path: self.path.clone(),
            });
        }
        let invalid = |what: &str| AuditError::Invalid {
            path: self.path.clone(),
            what: what.to_owned(),
        };
        if event.actor.is_empty() || event.action.is_empty() {
            return Err(invalid("actor and action must not be empty"));
        }
        if !event.details.is_object() {
            return Err(invalid("details must be a JSON object"));
        }
        let seq = self.entries + 1;
        let time = time::format(&event.time);
        let mut line = serde_json::to_vec(&LineOut {
            seq,
            time: &time,
            actor: &event.actor,
            action: &event.action,
            subject: &event.subject,
            details: &event.details,
            prev: &self.last_hash,
        })
        .map_err(|e| invalid(&format!("cannot encode the entry: {e}")))?;
        let hash = sha256_hex(&line);
        line.push(b'\n');

        self.file.lock().map_err(io_err(&self.path))?;
        // Until the head is written, a failure leaves the trail in a state
        // only a fresh verification can judge.
        self.poisoned = true;
        let written = (&self.file)
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(io_err(&self.path))
            .and_then(|()| {
                write_head(
                    &self.path,
                    &Head {
                        seq,
                        hash: hash.clone(),
                    },
                )
            });
        let unlocked = self.file.unlock().map_err(io_err(&self.path));
        written?;
        unlocked?;
        self.poisoned = false;

        let entry = AuditEntry {
            seq,
            // As stored: whole seconds.
            time: time::parse(&time).unwrap_or(event.time),
            actor: event.actor.clone(),
            action: event.action.clone(),
            subject: event.subject.clone(),
            details: event.details.clone(),
            prev: std::mem::replace(&mut self.last_hash, hash.clone()),
            hash,
        };
        self.entries = seq;
        Ok(entry)
    }

    /// Verifies the whole trail at `path`: every line well-formed, `seq`
    /// counting from 1, every `prev` the hash of the line before, and the
    /// last line the one `<trail>.head` records. The error names the first
    /// faulty line (or the head) and what is wrong.
    pub fn verify(path: &Path) -> Result<VerifyReport, AuditError> {
        Self::scan_locked(path, |_| {})
    }

    /// All entries of the trail at `path`, verified as by
    /// [`AuditTrail::verify`].
    pub fn read(path: &Path) -> Result<Vec<AuditEntry>, AuditError> {
        let mut out = Vec::new();
        Self::scan_locked(path, |e| out.push(e))?;
        Ok(out)
    }

    fn scan_locked(path: &Path, visit: impl FnMut(AuditEntry)) -> Result<VerifyReport, AuditError> {
        let file = File::open(path).map_err(io_err(path))?;
        file.lock_shared().map_err(io_err(path))?;
        let report = scan(path, BufReader::new(&file), visit);
        // Closing the file releases the lock as well.
        let _ = file.unlock();
        report
    }
}

/// Reads and checks every line, then the head.
fn scan(
    path: &Path,
    mut reader: impl BufRead,
    mut visit: impl FnMut(AuditEntry),
) -> Result<VerifyReport, AuditError> {
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut prev_hash = GENESIS_HASH.to_owned();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let fault = |what: String| AuditError::Line {
            path: path.to_owned(),
            line: line_no,
            what,
        };
        if buf.pop() != Some(b'\n') {
            return Err(fault(
                "the last line is incomplete (no newline): the trail was cut off, \
                 perhaps by a crash during an append"
                    .into(),
            ));
        }
        if buf.is_empty() {
            return Err(fault("empty line".into()));
        }
        let line: LineIn = serde_json::from_slice(&buf)
            .map_err(|e| fault(format!("not a valid audit entry: {e}")))?;
        if line.seq != line_no {
            return Err(fault(format!(
                "seq is {}, expected {line_no}: lines were removed, inserted or reordered here",
                line.seq
            )));
        }
        if line.prev != prev_hash {
            return Err(fault(if line_no == 1 {
                "prev of the first entry must be 64 zeros".to_owned()
            } else {
                format!(
                    "prev does not match the SHA-256 of line {}: line {} was changed, or lines \
                     were removed or reordered",
                    line_no - 1,
                    line_no - 1
                )
            }));
        }
        let time = time::parse(&line.time)
            .ok_or_else(|| fault("time is not an RFC 3339 timestamp".into()))?;
        if !line.details.is_object() {
            return Err(fault("details is not a JSON object".into()));
        }
        let hash = sha256_hex(&buf);
        visit(AuditEntry {
            seq: line.seq,
            time,
            actor: line.actor,
            action: line.action,
            subject: line.subject,
            details: line.details,
            prev: line.prev,
            hash: hash.clone(),
        });
        prev_hash = hash;
    }
    check_head(path, line_no, &prev_hash)?;
    Ok(VerifyReport {
        entries: line_no,
        last_hash: prev_hash,
    })
}

fn check_head(path: &Path, entries: u64, last_hash: &str) -> Result<(), AuditError> {
    let head_file = head_path(path);
    let fault = |what: String| AuditError::Head {
        path: head_file.clone(),
        what,
    };
    let text = match fs::read(&head_file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if entries == 0 {
                return Ok(());
            }
            return Err(fault(format!(
                "the head file is missing, so nothing confirms that {} ends at entry {entries}; \
                 lines may have been removed from its end",
                path.display()
            )));
        }
        Err(e) => return Err(io_err(&head_file)(e)),
    };
    let head: Head =
        serde_json::from_slice(&text).map_err(|e| fault(format!("not a valid head file: {e}")))?;
    if head.seq > entries {
        return Err(fault(format!(
            "the head records entry {} but {} ends at entry {entries}: its last {} line(s) \
             were removed",
            head.seq,
            path.display(),
            head.seq - entries
        )));
    }
    if head.seq < entries {
        return Err(fault(format!(
            "the head records entry {} but {} goes on to entry {entries}: lines {}..={entries} \
             were appended without the head (by hand, or a crash between an append and its \
             head update)",
            head.seq,
            path.display(),
            head.seq + 1
        )));
    }
    if head.hash != last_hash {
        return Err(fault(format!(
            "line {entries} of {} is not the line the head recorded: it was changed",
            path.display()
        )));
    }
    Ok(())
}

fn write_head(trail: &Path, head: &Head) -> Result<(), AuditError> {
    let head_file = head_path(trail);
    let mut text = serde_json::to_vec(head).expect("a head always encodes");
    text.push(b'\n');
    koppel_contract::fsx::write_atomic(&head_file, &text).map_err(io_err(&head_file))
}

fn sync_parent(path: &Path) -> Result<(), AuditError> {
    koppel_contract::fsx::sync_parent(path).map_err(io_err(koppel_contract::fsx::parent_dir(path)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    const ACTIONS: [&str; 5] = [
        "delivery.registered",
        "run.started",
        "key.used",
        "run.stage",
        "run.succeeded",
    ];

    fn event(i: u64) -> AuditEvent {
        AuditEvent {
            time: Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap()
                + chrono::Duration::seconds(i as i64 * 61),
            actor: if i.is_multiple_of(3) {
                "operator:alice".into()
            } else {
                "daemon".into()
            },
            action: ACTIONS[i as usize % ACTIONS.len()].into(),
            subject: format!("D-{i}"),
            details: json!({"rows": i * 10, "sha256": sha256_hex(&i.to_le_bytes())}),
        }
    }

    /// A trail of `n` entries in a fresh directory.
    fn trail(n: u64) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut t = AuditTrail::open(&path).unwrap();
        for i in 1..=n {
            let entry = t.append(&event(i)).unwrap();
            assert_eq!(entry.seq, i);
        }
        (dir, path)
    }

    fn lines(path: &Path) -> Vec<Vec<u8>> {
        let bytes = fs::read(path).unwrap();
        assert_eq!(bytes.last(), Some(&b'\n'));
        bytes[..bytes.len() - 1]
            .split(|b| *b == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn write_lines(path: &Path, lines: &[Vec<u8>]) {
        let mut bytes = lines.join(&b'\n');
        bytes.push(b'\n');
        fs::write(path, bytes).unwrap();
    }

    fn line_fault(path: &Path) -> (u64, String) {
        match AuditTrail::verify(path) {
            Err(e @ AuditError::Line { .. }) => (e.line().unwrap(), e.to_string()),
            other => panic!("expected a line fault, got {other:?}"),
        }
    }

    #[test]
    fn a_trail_of_twenty_entries_verifies_and_reads_back() {
        let (_dir, path) = trail(20);
        let report = AuditTrail::verify(&path).unwrap();
        let lines = lines(&path);
        assert_eq!(lines.len(), 20);
        assert_eq!(report.entries, 20);
        assert_eq!(report.last_hash, sha256_hex(&lines[19]));
        let head: Head = serde_json::from_slice(&fs::read(head_path(&path)).unwrap()).unwrap();
        assert_eq!((head.seq, head.hash), (20, report.last_hash.clone()));

        // Fixed field order, exact bytes.
        assert_eq!(
            String::from_utf8(lines[0].clone()).unwrap(),
            format!(
                "{{\"seq\":1,\"time\":\"2025-03-01T09:01:01Z\",\"actor\":\"daemon\",\
                 \"action\":\"run.started\",\"subject\":\"D-1\",\"details\":{{\"rows\":10,\
                 \"sha256\":\"{}\"}},\"prev\":\"{GENESIS_HASH}\"}}",
                sha256_hex(&1u64.to_le_bytes())
            )
        );

        let entries = AuditTrail::read(&path).unwrap();
        assert_eq!(entries.len(), 20);
        assert_eq!(entries[0].prev, GENESIS_HASH);
        for (i, pair) in entries.windows(2).enumerate() {
            assert_eq!(pair[1].seq, i as u64 + 2);
            assert_eq!(pair[1].prev, pair[0].hash);
            assert_eq!(pair[1].hash, sha256_hex(&lines[i + 1]));
        }
        assert_eq!(entries[5].action, event(6).action);
        assert_eq!(entries[5].time, event(6).time);
        assert_eq!(entries[5].details, event(6).details);
        let json = serde_json::to_value(&entries[0]).unwrap();
        assert_eq!(json["time"], "2025-03-01T09:01:01Z");
    }

    #[test]
    fn an_edited_byte_in_a_middle_line_is_found() {
        let (_dir, path) = trail(20);
        let mut ls = lines(&path);
        let at = ls[9].windows(6).position(|w| w == b"\"D-10\"").unwrap();
        ls[9][at + 3] = b'7'; // "D-10" -> "D-70": still valid JSON
        write_lines(&path, &ls);
        let (line, msg) = line_fault(&path);
        assert_eq!(line, 11, "{msg}");
        assert!(msg.contains("line 10 was changed"), "{msg}");

        // A byte that breaks the JSON is found on the line itself.
        let mut ls = lines(&path);
        ls[9][at + 3] = b'1';
        ls[9][0] = b'[';
        write_lines(&path, &ls);
        let (line, msg) = line_fault(&path);
        assert_eq!(line, 10, "{msg}");
        assert!(msg.contains("not a valid audit entry"), "{msg}");
    }

    #[test]
    fn a_removed_middle_line_is_found() {
        let (_dir, path) = trail(20);
        let mut ls = lines(&path);
        ls.remove(9);
        write_lines(&path, &ls);
        let (line, msg) = line_fault(&path);
        assert_eq!(line, 10, "{msg}");
        assert!(msg.contains("seq is 11, expected 10"), "{msg}");
    }

    #[test]
    fn swapped_lines_are_found() {
        let (_dir, path) = trail(20);
        let mut ls = lines(&path);
        ls.swap(4, 5);
        write_lines(&path, &ls);
        let (line, msg) = line_fault(&path);
        assert_eq!(line, 5, "{msg}");
    }

    #[test]
    fn a_removed_last_line_is_found_by_the_head() {
        let (_dir, path) = trail(20);
        let mut ls = lines(&path);
        ls.pop();
        write_lines(&path, &ls);
        let err = AuditTrail::verify(&path).unwrap_err();
        assert!(matches!(err, AuditError::Head { .. }), "{err:?}");
        assert!(
            err.to_string().contains("last 1 line(s) were removed"),
            "{err}"
        );

        fs::remove_file(head_path(&path)).unwrap();
        let err = AuditTrail::verify(&path).unwrap_err();
        assert!(err.to_string().contains("head file is missing"), "{err}");
    }

    #[test]
    fn a_changed_last_line_or_an_append_without_head_is_found() {
        let (_dir, path) = trail(3);
        let head3 = fs::read(head_path(&path)).unwrap();
        AuditTrail::open(&path).unwrap().append(&event(4)).unwrap();
        AuditTrail::verify(&path).unwrap();
        let head4 = fs::read(head_path(&path)).unwrap();

        // As after a crash between the line and its head.
        fs::write(head_path(&path), &head3).unwrap();
        let err = AuditTrail::verify(&path).unwrap_err();
        assert!(matches!(err, AuditError::Head { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("lines 4..=4 were appended without the head"),
            "{err}"
        );

        // The last line edited: the chain before it still holds, the head
        // does not.
        fs::write(head_path(&path), &head4).unwrap();
        let mut ls = lines(&path);
        let edited = String::from_utf8(ls[3].clone())
            .unwrap()
            .replace("run.succeeded", "run.failed");
        assert_ne!(edited.as_bytes(), ls[3]);
        ls[3] = edited.into_bytes();
        write_lines(&path, &ls);
        let err = AuditTrail::verify(&path).unwrap_err();
        assert!(matches!(err, AuditError::Head { .. }), "{err:?}");
        assert!(err.to_string().contains("line 4 of"), "{err}");
        assert!(err.to_string().contains("it was changed"), "{err}");
    }

    #[test]
    fn appending_after_reopen_continues_the_chain() {
        let (_dir, path) = trail(20);
        let before = AuditTrail::verify(&path).unwrap();
        let mut t = AuditTrail::open(&path).unwrap();
        assert_eq!(t.entries(), 20);
        assert_eq!(t.last_hash(), before.last_hash);
        let entry = t.append(&event(21)).unwrap();
        assert_eq!(entry.seq, 21);
        assert_eq!(entry.prev, before.last_hash);
        drop(t);
        let after = AuditTrail::verify(&path).unwrap();
        assert_eq!(after.entries, 21);
        assert_eq!(after.last_hash, entry.hash);
    }

    #[test]
    fn open_refuses_a_broken_trail() {
        let (_dir, path) = trail(20);
        let mut ls = lines(&path);
        ls.swap(11, 12);
        write_lines(&path, &ls);
        let size = fs::metadata(&path).unwrap().len();
        let err = AuditTrail::open(&path).unwrap_err();
        assert_eq!(err.line(), Some(12), "{err}");
        assert_eq!(fs::metadata(&path).unwrap().len(), size);
    }

    #[test]
    fn a_torn_last_line_is_reported() {
        let (_dir, path) = trail(5);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"seq\":6,\"ti").unwrap();
        drop(f);
        let (line, msg) = line_fault(&path);
        assert_eq!(line, 6);
        assert!(msg.contains("incomplete"), "{msg}");
        assert!(AuditTrail::open(&path).is_err());
    }

    #[test]
    fn there_is_one_writer_at_a_time() {
        let (_dir, path) = trail(2);
        let first = AuditTrail::open(&path).unwrap();
        assert!(matches!(
            AuditTrail::open(&path),
            Err(AuditError::Locked { .. })
        ));
        // Readers are not writers.
        assert_eq!(AuditTrail::verify(&path).unwrap().entries, 2);
        drop(first);
        AuditTrail::open(&path).unwrap();
    }

    #[test]
    fn an_invalid_event_writes_nothing() {
        let (_dir, path) = trail(2);
        let mut t = AuditTrail::open(&path).unwrap();
        let mut bad = event(3);
        bad.details = json!(["not", "an", "object"]);
        assert!(matches!(t.append(&bad), Err(AuditError::Invalid { .. })));
        bad = event(3);
        bad.action = String::new();
        assert!(matches!(t.append(&bad), Err(AuditError::Invalid { .. })));
        assert_eq!(t.append(&event(3)).unwrap().seq, 3);
        assert_eq!(AuditTrail::verify(&path).unwrap().entries, 3);
    }

    #[test]
    fn an_empty_trail_verifies_and_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        assert!(matches!(
            AuditTrail::verify(&path),
            Err(AuditError::Io { .. })
        ));
        drop(AuditTrail::open(&path).unwrap());
        let report = AuditTrail::verify(&path).unwrap();
        assert_eq!(report.entries, 0);
        assert_eq!(report.last_hash, GENESIS_HASH);
    }
}

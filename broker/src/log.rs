//! One partition's log on disk: record batches, exactly as producers sent
//! them but for the base offset this broker assigns, appended to segment
//! files named by their first offset (`00000000000000000000.log`).
//!
//! Durability: an append returns only after the batches were written to the
//! segment file (`write(2)`), so an acknowledged batch survives the broker
//! process being killed; with `fsync` it is also flushed to the disk before
//! the acknowledgement (survives a machine crash). On open, every segment
//! is scanned and checked (length, magic, CRC-32C, offset continuity); a
//! torn tail, which a kill during a write can leave, is cut off.
//!
//! Bounds: a segment is rolled at `segment_bytes`; the index kept in memory
//! is one small entry per batch of the segments still on disk; closed
//! segments are deleted by [`PartitionLog::delete_segments_below`], which
//! the store's retention pass drives.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// The fixed header of a record batch (magic 2) up to and including its
/// record count.
pub const BATCH_HEADER: usize = 61;
const OFFSET_AT: usize = 0;
const LENGTH_AT: usize = 8;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const CRC_FROM: usize = 21;
const LAST_DELTA_AT: usize = 23;
const MAX_TS_AT: usize = 35;

/// Why a produce was refused.
#[derive(Debug)]
pub enum AppendError {
    /// Not a sequence of valid magic-2 record batches.
    Corrupt(&'static str),
    /// Writing failed (the partition was left as it was before).
    Io(std::io::Error),
}

/// Where one batch lies.
#[derive(Clone, Copy, Debug)]
struct BatchPos {
    base: i64,
    last: i64,
    max_timestamp: i64,
    pos: u64,
    len: u32,
}

struct Segment {
    base: i64,
    path: PathBuf,
    file: Arc<File>,
    size: u64,
    batches: Vec<BatchPos>,
    /// When the segment was last written (retention by age).
    modified: SystemTime,
}

/// A read of the log: `len` bytes of whole batches at `pos` of `file`.
pub struct Slice {
    pub file: Arc<File>,
    pub pos: u64,
    pub len: usize,
}

impl Slice {
    /// The bytes, read from the file (outside the partition's lock).
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0; self.len];
        self.file.read_exact_at(&mut buf, self.pos)?;
        Ok(buf)
    }
}

pub struct PartitionLog {
    dir: PathBuf,
    segments: Vec<Segment>,
    next_offset: i64,
    segment_bytes: u64,
    fsync: bool,
}

fn segment_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Checks one batch at the start of `b`; returns its total length and its
/// last offset delta.
fn check_batch(b: &[u8]) -> Result<(usize, i32), &'static str> {
    if b.len() < BATCH_HEADER {
        return Err("truncated record batch header");
    }
    let len = be_i32(b, LENGTH_AT);
    if len < (BATCH_HEADER - 12) as i32 {
        return Err("record batch length too small");
    }
    let total = 12 + len as usize;
    if b.len() < total {
        return Err("truncated record batch");
    }
    if b[MAGIC_AT] != 2 {
        return Err("only record batches of magic 2 are supported");
    }
    let crc = u32::from_be_bytes(b[CRC_AT..CRC_AT + 4].try_into().expect("4 bytes"));
    if crc32c::crc32c(&b[CRC_FROM..total]) != crc {
        return Err("record batch CRC mismatch");
    }
    let delta = be_i32(b, LAST_DELTA_AT);
    if delta < 0 {
        return Err("negative last offset delta");
    }
    Ok((total, delta))
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, recovering what a crash left.
    pub fn open(dir: &Path, segment_bytes: u64, fsync: bool) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut bases: Vec<i64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".log")?.parse().ok()
            })
            .collect();
        bases.sort_unstable();
        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            segments: Vec::new(),
            next_offset: bases.first().copied().unwrap_or(0),
            segment_bytes,
            fsync,
        };
        let mut broken = false;
        for base in bases {
            let path = segment_path(dir, base);
            if broken || base != log.next_offset {
                tracing::warn!(path = %path.display(), "segment after a damaged one (or out of order): removed");
                std::fs::remove_file(&path)?;
                broken = true;
                continue;
            }
            let (segment, clean) = Self::recover_segment(&path, base)?;
            log.next_offset = segment.batches.last().map_or(base, |b| b.last + 1);
            log.segments.push(segment);
            broken = !clean;
        }
        if log.segments.is_empty() {
            log.roll()?;
        }
        Ok(log)
    }

    /// Reads a segment and indexes its batches; cuts a damaged tail off.
    /// Returns whether the segment was whole.
    fn recover_segment(path: &Path, base: i64) -> std::io::Result<(Segment, bool)> {
        let mut data = Vec::new();
        File::open(path)?.read_to_end(&mut data)?;
        let mut batches = Vec::new();
        let (mut at, mut expected) = (0usize, base);
        let mut clean = true;
        while at < data.len() {
            let b = &data[at..];
            match check_batch(b) {
                Ok((total, delta)) if be_i64(b, OFFSET_AT) == expected => {
                    batches.push(BatchPos {
                        base: expected,
                        last: expected + delta as i64,
                        max_timestamp: be_i64(b, MAX_TS_AT),
                        pos: at as u64,
                        len: total as u32,
                    });
                    expected += delta as i64 + 1;
                    at += total;
                }
                Ok(_) | Err(_) => {
                    tracing::warn!(path = %path.display(), at, "damaged tail of a segment cut off (a write the broker did not acknowledge)");
                    clean = false;
                    break;
                }
            }
        }
        let file = OpenOptions::new().read(true).append(true).open(path)?;
        if !clean {
            file.set_len(at as u64)?;
        }
        let modified = file.metadata()?.modified()?;
        Ok((
            Segment {
                base,
                path: path.to_path_buf(),
                file: Arc::new(file),
                size: at as u64,
                batches,
                modified,
            },
            clean,
        ))
    }

    fn roll(&mut self) -> std::io::Result<()> {
        let path = segment_path(&self.dir, self.next_offset);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        if self.fsync {
            File::open(&self.dir)?.sync_all()?;
        }
        self.segments.push(Segment {
            base: self.next_offset,
            path,
            file: Arc::new(file),
            size: 0,
            batches: Vec::new(),
            modified: SystemTime::now(),
        });
        Ok(())
    }

    /// The first offset still held.
    pub fn start_offset(&self) -> i64 {
        self.segments.first().map_or(self.next_offset, |s| s.base)
    }

    /// The offset the next record gets (the high watermark: every offset
    /// below it is acknowledged and readable).
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Bytes on disk.
    pub fn size(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    /// Appends the record batches in `records`; returns the base offset of
    /// the first. Either every batch is stored or none is.
    pub fn append(&mut self, records: &[u8]) -> Result<i64, AppendError> {
        let mut data = records.to_vec();
        let mut entries = Vec::new();
        let (mut at, mut offset) = (0usize, self.next_offset);
        while at < data.len() {
            let (total, delta) = check_batch(&data[at..]).map_err(AppendError::Corrupt)?;
            data[at + OFFSET_AT..at + OFFSET_AT + 8].copy_from_slice(&offset.to_be_bytes());
            entries.push(BatchPos {
                base: offset,
                last: offset + delta as i64,
                max_timestamp: be_i64(&data[at..], MAX_TS_AT),
                pos: at as u64,
                len: total as u32,
            });
            offset += delta as i64 + 1;
            at += total;
        }
        if entries.is_empty() {
            return Err(AppendError::Corrupt("no record batch"));
        }
        if self.active().size >= self.segment_bytes {
            self.roll().map_err(AppendError::Io)?;
        }
        let fsync = self.fsync;
        let segment = self.segments.last_mut().expect("an active segment");
        let written = (|| {
            (&*segment.file).write_all(&data)?;
            if fsync {
                segment.file.sync_data()?;
            }
            Ok(())
        })();
        if let Err(e) = written {
            // Leave the partition as it was: a later append must not follow
            // a partial batch.
            let _ = segment.file.set_len(segment.size);
            return Err(AppendError::Io(e));
        }
        let first = entries[0].base;
        for mut e in entries {
            e.pos += segment.size;
            segment.batches.push(e);
        }
        segment.size += data.len() as u64;
        segment.modified = SystemTime::now();
        self.next_offset = offset;
        Ok(first)
    }

    fn active(&self) -> &Segment {
        self.segments.last().expect("an active segment")
    }

    /// Whole batches from the one holding `offset`, at least one and then
    /// as many as fit in `max_bytes`. `Ok(None)` at the end of the log;
    /// `Err(())` when `offset` is outside the log.
    #[allow(clippy::result_unit_err)]
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<Option<Slice>, ()> {
        if offset == self.next_offset {
            return Ok(None);
        }
        if offset < self.start_offset() || offset > self.next_offset {
            return Err(());
        }
        let si = self.segments.partition_point(|s| s.base <= offset) - 1;
        // An empty segment's offsets continue in the next one.
        let segment = self.segments[si..]
            .iter()
            .find(|s| s.batches.last().is_some_and(|b| b.last >= offset))
            .ok_or(())?;
        let bi = segment.batches.partition_point(|b| b.last < offset);
        let first = segment.batches[bi];
        let mut len = first.len as usize;
        for b in &segment.batches[bi + 1..] {
            if len + b.len as usize > max_bytes {
                break;
            }
            len += b.len as usize;
        }
        Ok(Some(Slice {
            file: segment.file.clone(),
            pos: first.pos,
            len,
        }))
    }

    /// The first offset whose batch has a timestamp at or after `ts` (the
    /// next offset when none has).
    pub fn offset_for_timestamp(&self, ts: i64) -> i64 {
        self.segments
            .iter()
            .flat_map(|s| s.batches.iter())
            .find(|b| b.max_timestamp >= ts)
            .map_or(self.next_offset, |b| b.base)
    }

    /// Deletes the closed segments that `delete` selects, oldest first,
    /// stopping at the first it keeps (the log stays contiguous). `delete`
    /// sees a segment's next offset, its size and when it was last written.
    /// Returns the bytes freed.
    pub fn delete_segments_below(
        &mut self,
        mut delete: impl FnMut(i64, u64, SystemTime) -> bool,
    ) -> u64 {
        let mut freed = 0;
        while self.segments.len() > 1 {
            let s = &self.segments[0];
            let end = self.segments[1].base;
            if !delete(end, s.size, s.modified) {
                break;
            }
            if let Err(e) = std::fs::remove_file(&s.path) {
                tracing::warn!(path = %s.path.display(), error = %e, "segment not deleted");
                break;
            }
            freed += s.size;
            self.segments.remove(0);
        }
        freed
    }

    /// Sizes of the closed segments with the offset after each, oldest first.
    pub fn closed_segments(&self) -> Vec<(i64, u64)> {
        self.segments
            .windows(2)
            .map(|w| (w[1].base, w[0].size))
            .collect()
    }
}

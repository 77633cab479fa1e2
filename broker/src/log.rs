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
use std::io::Write;
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
    /// When its first batch was written (rolling by age).
    opened: SystemTime,
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
        let last_base = bases.last().copied();
        for base in bases {
            let path = segment_path(dir, base);
            if broken || base != log.next_offset {
                tracing::warn!(path = %path.display(), "segment after a damaged one (or out of order): removed");
                std::fs::remove_file(&path)?;
                broken = true;
                continue;
            }
            let (segment, clean) = Self::recover_segment(&path, base, Some(base) == last_base)?;
            log.next_offset = segment.batches.last().map_or(base, |b| b.last + 1);
            log.segments.push(segment);
            broken = !clean;
        }
        if log.segments.is_empty() {
            log.roll()?;
        }
        Ok(log)
    }

    /// Indexes a segment's batches and cuts a damaged tail off. The last
    /// segment (the one a kill can have cut short) is read whole and every
    /// batch's CRC checked; closed segments, complete before the next one
    /// was begun, only batch by batch header (length, magic, offsets).
    /// Returns whether the segment was whole.
    fn recover_segment(path: &Path, base: i64, last: bool) -> std::io::Result<(Segment, bool)> {
        let file = OpenOptions::new().read(true).append(true).open(path)?;
        let len = file.metadata()?.len();
        let mut batches = Vec::new();
        let (mut at, mut expected) = (0u64, base);
        let mut clean = true;
        let mut buf = vec![0u8; BATCH_HEADER];
        while at < len {
            let checked = (|| {
                if len - at < BATCH_HEADER as u64 {
                    return None;
                }
                file.read_exact_at(&mut buf[..BATCH_HEADER], at).ok()?;
                let total = 12 + u64::try_from(be_i32(&buf, LENGTH_AT)).ok()?;
                if total < BATCH_HEADER as u64 || at + total > len || buf[MAGIC_AT] != 2 {
                    return None;
                }
                if last {
                    buf.resize(total as usize, 0);
                    file.read_exact_at(&mut buf, at).ok()?;
                    check_batch(&buf).ok()?;
                }
                let delta = be_i32(&buf, LAST_DELTA_AT);
                (be_i64(&buf, OFFSET_AT) == expected && delta >= 0).then_some((total, delta))
            })();
            let Some((total, delta)) = checked else {
                tracing::warn!(path = %path.display(), at, "damaged tail of a segment cut off (a write the broker did not acknowledge)");
                clean = false;
                break;
            };
            batches.push(BatchPos {
                base: expected,
                last: expected + delta as i64,
                max_timestamp: be_i64(&buf, MAX_TS_AT),
                pos: at,
                len: total as u32,
            });
            expected += delta as i64 + 1;
            at += total;
        }
        if !clean {
            file.set_len(at)?;
        }
        let modified = file.metadata()?.modified()?;
        Ok((
            Segment {
                base,
                path: path.to_path_buf(),
                file: Arc::new(file),
                size: at,
                batches,
                modified,
                opened: modified,
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
            opened: SystemTime::now(),
        });
        Ok(())
    }

    /// Closes the active segment if it holds data and its first write is
    /// older than `age`, so that retention can delete it once read (a topic
    /// no longer written to would otherwise keep its last segment forever).
    pub fn roll_if_older(&mut self, age: std::time::Duration) -> std::io::Result<()> {
        let active = self.active();
        if active.size > 0 && active.opened.elapsed().unwrap_or_default() >= age {
            self.roll()?;
        }
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
        if self.active().size == 0 {
            self.segments.last_mut().expect("an active segment").opened = SystemTime::now();
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record batch (magic 2) claiming `records` records, with a valid
    /// CRC; its record bytes are opaque to the log.
    pub fn batch(records: i32, body: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&0i64.to_be_bytes()); // base offset
        b.extend_from_slice(&0i32.to_be_bytes()); // length, below
        b.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
        b.push(2); // magic
        b.extend_from_slice(&0u32.to_be_bytes()); // crc, below
        b.extend_from_slice(&0i16.to_be_bytes()); // attributes
        b.extend_from_slice(&(records - 1).to_be_bytes()); // last offset delta
        b.extend_from_slice(&1_000i64.to_be_bytes()); // base timestamp
        b.extend_from_slice(&2_000i64.to_be_bytes()); // max timestamp
        b.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
        b.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
        b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
        b.extend_from_slice(&records.to_be_bytes());
        b.extend_from_slice(body);
        let len = (b.len() - 12) as i32;
        b[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c::crc32c(&b[CRC_FROM..]);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn dir() -> PathBuf {
        std::env::temp_dir().join(format!("av-broker-log-{}", uuid::Uuid::new_v4()))
    }

    fn offsets_in(slice: &[u8]) -> Vec<i64> {
        let mut at = 0;
        let mut out = Vec::new();
        while at < slice.len() {
            out.push(be_i64(slice, at));
            at += 12 + be_i32(slice, at + LENGTH_AT) as usize;
        }
        out
    }

    #[test]
    fn appends_assign_offsets_and_reads_return_whole_batches() {
        let d = dir();
        let mut log = PartitionLog::open(&d, 1 << 20, false).unwrap();
        assert_eq!(log.append(&batch(3, b"abc")).unwrap(), 0);
        let two = [batch(2, b"de"), batch(1, b"f")].concat();
        assert_eq!(log.append(&two).unwrap(), 3);
        assert_eq!(log.next_offset(), 6);
        // Offset 4 is inside the batch that starts at 3.
        let s = log.read(4, 1 << 20).unwrap().unwrap().read().unwrap();
        assert_eq!(offsets_in(&s), vec![3, 5]);
        // At least one batch even past max_bytes.
        let s = log.read(0, 1).unwrap().unwrap().read().unwrap();
        assert_eq!(offsets_in(&s), vec![0]);
        assert!(log.read(6, 100).unwrap().is_none());
        assert!(log.read(7, 100).is_err());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_corrupt_batch_is_refused_and_changes_nothing() {
        let d = dir();
        let mut log = PartitionLog::open(&d, 1 << 20, false).unwrap();
        let mut bad = batch(2, b"xy");
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let good = batch(1, b"z");
        assert!(matches!(
            log.append(&[good.clone(), bad].concat()),
            Err(AppendError::Corrupt(_))
        ));
        assert!(matches!(
            log.append(&good[..30]),
            Err(AppendError::Corrupt(_))
        ));
        assert!(matches!(log.append(&[]), Err(AppendError::Corrupt(_))));
        assert_eq!(log.next_offset(), 0);
        assert_eq!(log.size(), 0);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn reopening_recovers_every_batch_and_cuts_a_torn_tail() {
        let d = dir();
        let mut log = PartitionLog::open(&d, 200, false).unwrap();
        for i in 0..10 {
            log.append(&batch(2, &[i; 50])).unwrap();
        }
        assert!(log.segments.len() > 2, "small segments rolled");
        drop(log);
        // A write cut short by a kill: half a batch at the end of the last segment.
        let last = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .max()
            .unwrap();
        let whole = std::fs::metadata(&last).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&last).unwrap();
        f.write_all(&batch(5, &[9; 40])[..70]).unwrap();
        drop(f);

        let mut log = PartitionLog::open(&d, 200, false).unwrap();
        assert_eq!(log.next_offset(), 20);
        assert_eq!(
            std::fs::metadata(&last).unwrap().len(),
            whole,
            "torn tail cut off"
        );
        let mut offsets = Vec::new();
        let mut at = 0;
        while let Some(s) = log.read(at, 1 << 20).unwrap() {
            let o = offsets_in(&s.read().unwrap());
            at = o.last().unwrap() + 2;
            offsets.extend(o);
        }
        assert_eq!(offsets, (0..20).step_by(2).collect::<Vec<i64>>());
        // Appends continue after the recovered end.
        assert_eq!(log.append(&batch(1, b"n")).unwrap(), 20);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn retention_deletes_closed_segments_oldest_first_and_keeps_the_log_contiguous() {
        let d = dir();
        let mut log = PartitionLog::open(&d, 150, false).unwrap();
        for i in 0..8 {
            log.append(&batch(1, &[i; 60])).unwrap();
        }
        let segments = log.segments.len();
        assert!(segments >= 3);
        // Delete what ends at or below offset 4 (read by every group).
        let freed = log.delete_segments_below(|end, _, _| end <= 4);
        assert!(freed > 0);
        assert!(log.start_offset() > 0 && log.start_offset() <= 4);
        assert!(
            log.read(0, 100).is_err(),
            "deleted offsets are out of range"
        );
        assert!(log.read(log.start_offset(), 100).unwrap().is_some());
        // The active segment is never deleted; an old one is rolled first.
        log.delete_segments_below(|_, _, _| true);
        assert_eq!(log.segments.len(), 1);
        log.roll_if_older(std::time::Duration::ZERO).unwrap();
        log.delete_segments_below(|_, _, _| true);
        assert_eq!(log.size(), 0);
        assert_eq!(log.start_offset(), 8);
        assert_eq!(log.append(&batch(1, b"x")).unwrap(), 8);
        drop(log);
        let log = PartitionLog::open(&d, 150, false).unwrap();
        assert_eq!((log.start_offset(), log.next_offset()), (8, 9));
        std::fs::remove_dir_all(d).unwrap();
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        /// Whatever a client sends, an append stores it whole or refuses it,
        /// and whatever a segment file holds, opening it recovers a valid
        /// prefix: never a panic.
        #[test]
        fn arbitrary_bytes_never_panic_on_append_or_recovery(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            cut in 0usize..200,
        ) {
            let d = dir();
            let mut log = PartitionLog::open(&d, 1 << 20, false).unwrap();
            let _ = log.append(&noise);
            let good = batch(2, &noise[..noise.len().min(50)]);
            log.append(&good).unwrap();
            let next = log.next_offset();
            drop(log);
            // Noise after the last good batch, or a good batch cut short.
            let seg = segment_path(&d, 0);
            let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
            f.write_all(&noise).unwrap();
            f.write_all(&good[..cut.min(good.len())]).unwrap();
            drop(f);
            let log = PartitionLog::open(&d, 1 << 20, false).unwrap();
            proptest::prop_assert!(log.next_offset() >= next);
            let s = log.read(next - 2, 1 << 20).unwrap().unwrap().read().unwrap();
            proptest::prop_assert_eq!(offsets_in(&s)[0], next - 2);
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}

//! Replay detection in bounded memory (PROTOCOL §8: no (sender, nonce)
//! pair appears twice in the chain).
//!
//! `verify` streams every message of the chain; remembering each pair in a
//! map would grow with the chain (about 50 bytes a message, half a gigabyte
//! at ten million). Instead each message leaves a 24-byte record, its
//! [`PairDigest`] and seq, in a [`PairSorter`]: records are sorted in runs
//! of a bounded size, each run spilled to an anonymous temporary file, and
//! at the end the runs and the pairs remembered from earlier audits (a
//! sorted [`pair file`](PairFileWriter)) are merged. Equal digests then sit
//! next to each other, and the merge names the replay [`Auditor::check`]
//! would have named first, while it writes the merged, sorted pairs out for
//! the next audit.
//!
//! [`Auditor::check`]: sealchain_shared::audit::Auditor::check

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sealchain_shared::audit::PairDigest;
use sha2::{Digest, Sha256};

/// A (sender, nonce) pair's digest and the seq of its message.
pub type PairRecord = (PairDigest, u64);

/// Bytes of one record on disk: digest, then seq (u64, big-endian).
pub const RECORD_BYTES: usize = 16 + 8;

/// The first bytes of a pair file (format version 1).
pub const PAIR_FILE_MAGIC: &[u8; 16] = b"sealchain-pairs1";

/// Records sorted in memory before a run is spilled: 24 MiB.
pub const RUN_RECORDS: usize = 1 << 20;

fn encode(record: &PairRecord) -> [u8; RECORD_BYTES] {
    let mut out = [0; RECORD_BYTES];
    out[..16].copy_from_slice(&record.0);
    out[16..].copy_from_slice(&record.1.to_be_bytes());
    out
}

fn decode(raw: &[u8; RECORD_BYTES]) -> PairRecord {
    let mut digest = [0; 16];
    digest.copy_from_slice(&raw[..16]);
    let mut seq = [0; 8];
    seq.copy_from_slice(&raw[16..]);
    (digest, u64::from_be_bytes(seq))
}

/// Reads records until the end of `reader`; a partial record is an error.
fn read_record(reader: &mut impl Read) -> io::Result<Option<PairRecord>> {
    let mut raw = [0; RECORD_BYTES];
    let mut filled = 0;
    while filled < RECORD_BYTES {
        match reader.read(&mut raw[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "a pair record is cut short",
                ));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(decode(&raw)))
}

/// Pairs remembered from earlier audits, sorted by (digest, seq).
#[derive(Debug)]
pub enum Remembered {
    /// None (a first audit, or `--no-checkpoint`).
    None,
    /// Held in memory (the inline `pairs` of an older checkpoint file).
    Memory(Vec<PairRecord>),
    /// A pair file whose size and SHA-256 were checked, positioned after
    /// its magic.
    File(BufReader<File>),
}

impl Remembered {
    /// The inline pairs of an older checkpoint, sorted.
    pub fn from_unsorted(mut pairs: Vec<PairRecord>) -> Self {
        pairs.sort_unstable();
        Self::Memory(pairs)
    }

    /// Opens the pair file `file`, checking that it holds `records` records
    /// and hashes to `sha256` (a truncated or swapped file is refused).
    pub fn open(file: &Path, records: u64, sha256: &[u8; 32]) -> anyhow::Result<Self> {
        let refuse = |why: String| {
            anyhow::anyhow!(
                "{} {why}: it is not the pair file the audit checkpoint records (delete the checkpoint and \
                 its pair files to start over)",
                file.display()
            )
        };
        let mut f = File::open(file).map_err(|e| refuse(format!("cannot be read ({e})")))?;
        let expected = records
            .checked_mul(RECORD_BYTES as u64)
            .and_then(|n| n.checked_add(PAIR_FILE_MAGIC.len() as u64))
            .ok_or_else(|| refuse("is too large".into()))?;
        let len = f.metadata().map_err(|e| refuse(format!("cannot be read ({e})")))?.len();
        if len != expected {
            return Err(refuse(format!(
                "has {len} bytes where {records} pairs take {expected} (truncated or replaced)"
            )));
        }
        let mut hasher = Sha256::new();
        let mut buffer = vec![0; 1 << 16];
        let mut magic = [0; 16];
        let mut reader = BufReader::new(&mut f);
        reader
            .read_exact(&mut magic)
            .map_err(|e| refuse(format!("cannot be read ({e})")))?;
        if &magic != PAIR_FILE_MAGIC {
            return Err(refuse("is not a sealchain pair file".into()));
        }
        hasher.update(magic);
        loop {
            let n = reader
                .read(&mut buffer)
                .map_err(|e| refuse(format!("cannot be read ({e})")))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        if hasher.finalize()[..] != sha256[..] {
            return Err(refuse(
                "does not have the SHA-256 the checkpoint records (changed or swapped)".into(),
            ));
        }
        f.seek(SeekFrom::Start(PAIR_FILE_MAGIC.len() as u64))
            .map_err(|e| refuse(format!("cannot be read ({e})")))?;
        Ok(Self::File(BufReader::new(f)))
    }
}

/// A pair file being written: sorted records after [`PAIR_FILE_MAGIC`],
/// hashed as they go. Written to a temporary file in the directory it will
/// be renamed into.
#[derive(Debug)]
pub struct PairFileWriter {
    file: BufWriter<tempfile::NamedTempFile>,
    hasher: Sha256,
    records: u64,
}

/// A pair file written and synced, not yet in place.
#[derive(Debug)]
pub struct PairFile {
    file: tempfile::NamedTempFile,
    /// Records it holds.
    pub records: u64,
    /// SHA-256 of the whole file.
    pub sha256: [u8; 32],
}

impl PairFileWriter {
    /// Starts a pair file in `dir`.
    pub fn new(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut writer = Self {
            file: BufWriter::with_capacity(1 << 16, tempfile::NamedTempFile::new_in(dir)?),
            hasher: Sha256::new(),
            records: 0,
        };
        writer.file.write_all(PAIR_FILE_MAGIC)?;
        writer.hasher.update(PAIR_FILE_MAGIC);
        Ok(writer)
    }

    fn push(&mut self, record: &PairRecord) -> io::Result<()> {
        let raw = encode(record);
        self.hasher.update(raw);
        self.records += 1;
        self.file.write_all(&raw)
    }

    /// Flushes and syncs the file.
    pub fn finish(self) -> io::Result<PairFile> {
        let file = self.file.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.as_file().sync_all()?;
        Ok(PairFile {
            file,
            records: self.records,
            sha256: self.hasher.finalize().into(),
        })
    }
}

impl PairFile {
    /// Renames it to `path` (in the directory it was written in) and syncs
    /// that directory.
    pub fn persist(self, path: &Path) -> anyhow::Result<()> {
        self.file
            .persist(path)
            .map_err(|e| anyhow::anyhow!("writing {}: {}", path.display(), e.error))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all()).ok();
        }
        Ok(())
    }
}

/// The first replay the merge found: the message at `seq` repeats the
/// pair (`digest`) of the message at `other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// The message whose pair was seen before when the audit reached it
    /// (an audited message, not a remembered one).
    pub seq: u64,
    /// The other message with that pair.
    pub other: u64,
    /// The pair's digest.
    pub digest: PairDigest,
}

/// Collects the audited messages' pair records in sorted runs of bounded
/// size (see the module documentation).
#[derive(Debug)]
pub struct PairSorter {
    dir: PathBuf,
    run_records: usize,
    buffer: Vec<PairRecord>,
    runs: Vec<File>,
    records: u64,
}

impl PairSorter {
    /// A sorter that spills runs of `run_records` records to anonymous files
    /// in `dir`.
    pub fn new(dir: impl Into<PathBuf>, run_records: usize) -> Self {
        Self {
            dir: dir.into(),
            run_records: run_records.max(1),
            buffer: Vec::new(),
            runs: Vec::new(),
            records: 0,
        }
    }

    /// Adds the pair of the message at `seq`.
    pub fn push(&mut self, digest: PairDigest, seq: u64) -> io::Result<()> {
        if self.buffer.capacity() == 0 {
            self.buffer.reserve_exact(self.run_records);
        }
        self.buffer.push((digest, seq));
        self.records += 1;
        if self.buffer.len() >= self.run_records {
            self.spill()?;
        }
        Ok(())
    }

    /// Records pushed so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Runs spilled to disk so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    fn spill(&mut self) -> io::Result<()> {
        self.buffer.sort_unstable();
        std::fs::create_dir_all(&self.dir)?;
        let mut out = BufWriter::with_capacity(1 << 16, tempfile::tempfile_in(&self.dir)?);
        for record in &self.buffer {
            out.write_all(&encode(record))?;
        }
        let mut file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.seek(SeekFrom::Start(0))?;
        self.runs.push(file);
        self.buffer.clear();
        Ok(())
    }

    /// Merges the runs with the `remembered` pairs: returns the first
    /// replay, if any, in the order an audit in seq order meets them, and
    /// writes every distinct record, sorted, to `out`. A remembered record
    /// at an audited message's own seq is that message, audited before,
    /// not a replay.
    ///
    /// The pushed records may be checked again after this (the sorter keeps
    /// them); the runs are rewound.
    pub fn find_replay(
        &mut self,
        remembered: &mut Remembered,
        mut out: Option<&mut PairFileWriter>,
    ) -> io::Result<Option<Found>> {
        self.buffer.sort_unstable();
        let mut sources: Vec<Source<'_>> = Vec::with_capacity(self.runs.len() + 2);
        for run in &mut self.runs {
            run.seek(SeekFrom::Start(0))?;
            sources.push(Source::Run(
                BufReader::with_capacity(1 << 16, run as &mut dyn ReadSeek),
                false,
            ));
        }
        sources.push(Source::Memory(self.buffer.iter(), false));
        match remembered {
            Remembered::None => {}
            Remembered::Memory(pairs) => sources.push(Source::Memory(pairs.iter(), true)),
            Remembered::File(reader) => {
                reader.seek(SeekFrom::Start(PAIR_FILE_MAGIC.len() as u64))?;
                sources.push(Source::Run(BufReader::new(reader as &mut dyn ReadSeek), true));
            }
        }
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (i, source) in sources.iter_mut().enumerate() {
            if let Some(record) = source.next()? {
                heap.push(Reverse((record, i)));
            }
        }
        let mut group = Group::default();
        let mut last: Option<PairRecord> = None;
        let mut first: Option<Found> = None;
        while let Some(Reverse((record, i))) = heap.pop() {
            if let Some(next) = sources[i].next()? {
                heap.push(Reverse((next, i)));
            }
            let is_remembered = sources[i].remembered();
            if group.digest != Some(record.0) {
                first = earliest(first, group.replay());
                group = Group {
                    digest: Some(record.0),
                    ..Group::default()
                };
            }
            group.add(record.1, is_remembered);
            if last != Some(record) {
                if let Some(out) = out.as_deref_mut() {
                    out.push(&record)?;
                }
                last = Some(record);
            }
        }
        Ok(earliest(first, group.replay()))
    }
}

fn earliest(a: Option<Found>, b: Option<Found>) -> Option<Found> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.seq < a.seq { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Records of one sorted source.
enum Source<'a> {
    Run(BufReader<&'a mut dyn ReadSeek>, bool),
    Memory(std::slice::Iter<'a, PairRecord>, bool),
}

trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

impl Source<'_> {
    fn next(&mut self) -> io::Result<Option<PairRecord>> {
        match self {
            Self::Run(reader, _) => read_record(reader),
            Self::Memory(iter, _) => Ok(iter.next().copied()),
        }
    }

    fn remembered(&self) -> bool {
        match self {
            Self::Run(_, r) | Self::Memory(_, r) => *r,
        }
    }
}

/// What the merge keeps of the records with one digest, in seq order: the
/// two first audited seqs and the two first remembered ones (enough to
/// name the replay, however many copies there are).
#[derive(Default)]
struct Group {
    digest: Option<PairDigest>,
    audited: [Option<u64>; 2],
    remembered: [Option<u64>; 2],
}

impl Group {
    fn add(&mut self, seq: u64, remembered: bool) {
        let slots = if remembered {
            &mut self.remembered
        } else {
            &mut self.audited
        };
        if slots[0].is_none() {
            slots[0] = Some(seq);
        } else if slots[1].is_none() && slots[0] != Some(seq) {
            slots[1] = Some(seq);
        }
    }

    /// A remembered message other than the one at `seq`.
    fn remembered_other(&self, seq: u64) -> Option<u64> {
        self.remembered.iter().flatten().copied().find(|&r| r != seq)
    }

    /// The replay an audit in seq order meets first: the first audited
    /// message whose pair is remembered at another seq, or was audited
    /// before it. The remembered message is named if there is one.
    fn replay(&self) -> Option<Found> {
        let digest = self.digest?;
        let [first, second] = self.audited;
        let first = first?;
        if let Some(other) = self.remembered_other(first) {
            return Some(Found {
                seq: first,
                other,
                digest,
            });
        }
        let second = second?;
        Some(Found {
            seq: second,
            other: self.remembered_other(second).unwrap_or(first),
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> PairDigest {
        let mut digest = [0; 16];
        digest[0] = n;
        digest[15] = n.wrapping_mul(7);
        digest
    }

    fn sorter(dir: &Path, run: usize, records: &[PairRecord]) -> PairSorter {
        let mut s = PairSorter::new(dir, run);
        for (digest, seq) in records {
            s.push(*digest, *seq).unwrap();
        }
        s
    }

    fn found(seq: u64, other: u64, digest: PairDigest) -> Option<Found> {
        Some(Found { seq, other, digest })
    }

    /// Distinct pairs, in seq order, with digests out of order.
    fn distinct(n: u64) -> Vec<PairRecord> {
        (0..n)
            .map(|seq| {
                let mut digest = [0; 16];
                digest[..8].copy_from_slice(&(seq.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_be_bytes());
                (digest, seq)
            })
            .collect()
    }

    #[test]
    fn no_false_positive_in_one_run_or_many() {
        let dir = tempfile::tempdir().unwrap();
        let records = distinct(1000);
        for run in [1, 7, 100, 10_000] {
            let mut s = sorter(dir.path(), run, &records);
            assert_eq!(s.runs(), if run == 1 { 1000 } else { 1000 / run });
            assert_eq!(s.find_replay(&mut Remembered::None, None).unwrap(), None, "run {run}");
        }
    }

    #[test]
    fn a_duplicate_within_one_run_is_named_with_the_earlier_seq() {
        let dir = tempfile::tempdir().unwrap();
        let mut records = distinct(50);
        records[40].0 = records[3].0;
        let mut s = sorter(dir.path(), 1000, &records);
        assert_eq!(s.runs(), 0, "everything in memory");
        assert_eq!(
            s.find_replay(&mut Remembered::None, None).unwrap(),
            found(40, 3, records[3].0)
        );
    }

    #[test]
    fn duplicates_across_runs_name_the_first_replay_in_seq_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut records = distinct(100);
        // Two replays: 70 repeats 2, 55 repeats 31 (met first), 90 repeats 55.
        records[70].0 = records[2].0;
        records[55].0 = records[31].0;
        records[90].0 = records[31].0;
        let mut s = sorter(dir.path(), 8, &records);
        assert!(s.runs() >= 10);
        let f = s.find_replay(&mut Remembered::None, None).unwrap();
        assert_eq!(f, found(55, 31, records[31].0));
        // The sorter can be asked again (after an error elsewhere, say).
        assert_eq!(s.find_replay(&mut Remembered::None, None).unwrap(), f);
    }

    #[test]
    fn a_remembered_pair_is_a_replay_at_another_seq_but_not_at_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let earlier = distinct(20);
        // A re-audit of remembered messages: the same pairs at the same seqs.
        let mut s = sorter(dir.path(), 3, &earlier[10..]);
        let mut memory = Remembered::from_unsorted(earlier.clone());
        assert_eq!(s.find_replay(&mut memory, None).unwrap(), None);

        // A later message repeats remembered message 4.
        let mut later = distinct(30)[20..].to_vec();
        later[5].0 = earlier[4].0;
        let mut s = sorter(dir.path(), 3, &later);
        assert_eq!(s.find_replay(&mut memory, None).unwrap(), found(25, 4, earlier[4].0));
        // A remembered message repeating an audited one names the audited
        // message as met, the remembered one as the other (a --from audit
        // below the remembered blocks).
        let mut low = distinct(5);
        low[1].0 = earlier[12].0;
        let mut s = sorter(dir.path(), 2, &low);
        assert_eq!(s.find_replay(&mut memory, None).unwrap(), found(1, 12, earlier[12].0));
    }

    #[test]
    fn a_remembered_pair_file_is_merged_written_sorted_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let first = distinct(40);
        let mut writer = PairFileWriter::new(dir.path()).unwrap();
        let mut s = sorter(dir.path(), 6, &first);
        assert_eq!(s.find_replay(&mut Remembered::None, Some(&mut writer)).unwrap(), None);
        let file = writer.finish().unwrap();
        assert_eq!(file.records, 40);
        let path = dir.path().join("a.pairs");
        let sha = file.sha256;
        file.persist(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 16 + 40 * RECORD_BYTES);
        let on_disk: Vec<PairRecord> = bytes[16..]
            .chunks(RECORD_BYTES)
            .map(|c| decode(c.try_into().unwrap()))
            .collect();
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(on_disk, sorted);

        // Overlapping re-audit (20..40 again) plus new messages: merged
        // without repeats; a replay of remembered message 7 is found.
        let mut remembered = Remembered::open(&path, 40, &sha).unwrap();
        let again = distinct(60)[20..].to_vec();
        let mut writer = PairFileWriter::new(dir.path()).unwrap();
        let mut s = sorter(dir.path(), 6, &again);
        assert_eq!(s.find_replay(&mut remembered, Some(&mut writer)).unwrap(), None);
        assert_eq!(writer.finish().unwrap().records, 60);
        let mut replayed = again.clone();
        replayed[30].0 = first[7].0;
        let mut s = sorter(dir.path(), 6, &replayed);
        assert_eq!(s.find_replay(&mut remembered, None).unwrap(), found(50, 7, first[7].0));
    }

    #[test]
    fn a_truncated_or_swapped_pair_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let write = |records: &[PairRecord], name: &str| {
            let mut writer = PairFileWriter::new(dir.path()).unwrap();
            sorter(dir.path(), 4, records)
                .find_replay(&mut Remembered::None, Some(&mut writer))
                .unwrap();
            let file = writer.finish().unwrap();
            let (n, sha) = (file.records, file.sha256);
            file.persist(&dir.path().join(name)).unwrap();
            (n, sha)
        };
        let (n, sha) = write(&distinct(10), "a.pairs");
        let (m, other_sha) = write(&distinct(10)[..9], "b.pairs");
        let a = dir.path().join("a.pairs");
        let b = dir.path().join("b.pairs");
        let err = |r: anyhow::Result<Remembered>| format!("{:#}", r.expect_err("refused"));
        assert!(Remembered::open(&a, n, &sha).is_ok());
        assert!(Remembered::open(&b, m, &other_sha).is_ok());

        let text = err(Remembered::open(&a, n, &other_sha));
        assert!(
            text.contains("does not have the SHA-256 the checkpoint records"),
            "{text}"
        );
        // A same-sized file in its place (one record changed).
        let mut bytes = std::fs::read(&a).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&b, &bytes).unwrap();
        let text = err(Remembered::open(&b, n, &sha));
        assert!(text.contains("changed or swapped"), "{text}");
        // Cut short.
        let bytes = std::fs::read(&a).unwrap();
        std::fs::write(&b, &bytes[..bytes.len() - 5]).unwrap();
        let text = err(Remembered::open(&b, n, &sha));
        assert!(
            text.contains("truncated or replaced") && text.contains("delete the checkpoint"),
            "{text}"
        );
        std::fs::remove_file(&b).unwrap();
        let text = err(Remembered::open(&b, n, &sha));
        assert!(text.contains("cannot be read"), "{text}");
    }

    #[test]
    fn many_copies_of_one_pair_name_the_first_two() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<PairRecord> = (0..100).map(|seq| (d(9), seq + 10)).collect();
        let mut s = sorter(dir.path(), 16, &records);
        assert_eq!(s.find_replay(&mut Remembered::None, None).unwrap(), found(11, 10, d(9)));
    }
}

//! The IPAM journal: one small checksummed record per allocation or release,
//! appended beside the snapshot (`ipam.json`) so a change costs one
//! `fdatasync` instead of a whole-file rewrite + rename + directory fsync.
//!
//! Data flow: [`super::store::Store`] creates a journal right after each
//! snapshot ([`fresh`] bytes, then [`Journal::new`]), appends [`Record`]s
//! to it ([`Journal::write`]) and, at start-up, reads it back ([`read`]) to
//! replay it on top of the snapshot.
//!
//! Format (`ipam.journal`, little endian):
//! - header, 24 bytes: magic `TTIPAMJ1`, generation `u64` (equal to the
//!   snapshot's `generation` it extends), CRC32 of those 16 bytes, 4 zero bytes;
//! - records from offset 24, each 8-byte aligned: payload length `u32`, CRC32
//!   (IEEE) of the payload `u32`, payload, zero padding. Payload: op `u8`
//!   (1 allocate, 2 release: IPv4; 3 allocate, 4 release: IPv6), address
//!   (4 or 16 bytes), cursor of that family after the change (`u32` or
//!   `u128`), id length `u16`, id (UTF-8). Journals of IPv4-only agents
//!   (ops 1 and 2 only) read unchanged.
//! - the rest of the file is zeros: the file is written full of zeros (not
//!   sparse) and fsynced when created, so an append changes neither its size
//!   nor its block map and `fdatasync` only has to write the data block.
//!
//! Torn tails: records are written one at a time, each synced before the
//! next is written (the sync of the last one may run on another thread —
//! [`Journal::syncer`] — while the caller does other work), so after a crash only the last one can be incomplete. Reading stops
//! at the first record that is not valid (zero length, length out of range,
//! truncated, bad checksum); whatever lies within one maximal record of that
//! point is the torn tail of an unacknowledged change. Anything non-zero
//! further on means a good record was damaged: [`JournalError::Corrupt`].

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

pub(crate) const MAGIC: &[u8; 8] = b"TTIPAMJ1";
pub(crate) const HEADER_LEN: u64 = 24;
const FRAME_HEADER: usize = 8;
const OP_ALLOCATE: u8 = 1;
const OP_RELEASE: u8 = 2;
const OP_ALLOCATE6: u8 = 3;
const OP_RELEASE6: u8 = 4;
/// op + address + cursor + id length, IPv4 (the shortest payload).
const FIXED_PAYLOAD: usize = 1 + 4 + 4 + 2;
/// The same for IPv6.
const FIXED_PAYLOAD6: usize = 1 + 16 + 16 + 2;
/// Longest id a record holds (`ID_MAX` in `ipam.rs`).
const ID_MAX: usize = 256;
/// Longest payload: an IPv6 record with the longest id.
const MAX_PAYLOAD: usize = FIXED_PAYLOAD6 + ID_MAX;
/// Longest framed record, padding included.
pub(crate) const MAX_RECORD: usize = (FRAME_HEADER + MAX_PAYLOAD).div_ceil(8) * 8;
/// Size of a fresh journal (zero-filled). ~3000 records of 64-character ids;
/// when full, the store writes a snapshot and starts a new journal.
pub(crate) const CAPACITY: u64 = 256 * 1024;

/// One change, as journaled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// `id` got `address`; the round-robin cursor of its family is now `cursor`.
    Allocate {
        id: String,
        address: IpAddr,
        cursor: u128,
    },
    /// `id` gave `address` back.
    Release { id: String, address: IpAddr },
}

/// What went wrong reading a journal (the store adds the path).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JournalError {
    Corrupt(String),
}

/// A journal open for appending.
#[derive(Debug)]
pub(crate) struct Journal {
    /// Shared with the [`Journal::syncer`] handles of records written but
    /// not yet synced (their `fdatasync` may run on another thread).
    file: Arc<File>,
    /// Where the next record goes.
    end: u64,
    /// The last record was written but not (known to be) synced: the next
    /// write syncs it first, so only the last record can ever be torn.
    unsynced: bool,
}

/// Journal contents read at start-up.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Contents {
    pub generation: u64,
    pub records: Vec<Record>,
    /// Bytes of an incomplete last record that were dropped (0 when clean).
    pub torn_bytes: usize,
}

/// The bytes of a fresh, empty journal of `generation`: header then zeros.
pub(crate) fn fresh(generation: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; usize::try_from(CAPACITY).unwrap_or(256 * 1024)];
    let header = header(generation);
    bytes[..header.len()].copy_from_slice(&header);
    bytes
}

fn header(generation: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..16].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32(&h[..16]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

impl Journal {
    /// Appends to `file`, a journal just written by [`fresh`] (so empty).
    pub(crate) fn new(file: File) -> Journal {
        Journal {
            file: Arc::new(file),
            end: HEADER_LEN,
            unsynced: false,
        }
    }

    /// Whether `record` still fits, and can be journaled at all (an id
    /// longer than a record holds — only possible from a hand-edited
    /// snapshot — must go through a snapshot instead).
    pub(crate) fn fits(&self, record: &Record) -> bool {
        let (Record::Allocate { id, .. } | Record::Release { id, .. }) = record;
        id.len() <= ID_MAX && self.end + encode(record).len() as u64 <= CAPACITY
    }

    /// Writes `record` (`pwrite`) without waiting for the disk: the caller
    /// makes it durable with [`Journal::syncer`] (on any thread) and reports
    /// with [`Journal::synced`]. A previous record still unsynced is synced
    /// first, so records reach the disk one at a time (the torn-tail rule).
    pub(crate) fn write(&mut self, record: &Record) -> std::io::Result<()> {
        if self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
        }
        let bytes = encode(record);
        self.file.write_all_at(&bytes, self.end)?;
        self.end += bytes.len() as u64;
        self.unsynced = true;
        Ok(())
    }

    /// A handle on the file for the `fdatasync` of the last written record.
    pub(crate) fn syncer(&self) -> Arc<File> {
        Arc::clone(&self.file)
    }

    /// The last written record is on disk (its `fdatasync` succeeded).
    pub(crate) fn synced(&mut self) {
        self.unsynced = false;
    }
}

/// The framed bytes of `record`.
pub(crate) fn encode(record: &Record) -> Vec<u8> {
    let (allocate, id, address, cursor) = match record {
        Record::Allocate {
            id,
            address,
            cursor,
        } => (true, id, address, *cursor),
        Record::Release { id, address } => (false, id, address, 0),
    };
    // `Journal::fits` keeps longer ids out; clamp regardless so the length
    // field can never lie.
    let id = id.as_bytes();
    let id = &id[..id.len().min(ID_MAX)];
    let mut payload = Vec::with_capacity(FIXED_PAYLOAD6 + id.len());
    match address {
        IpAddr::V4(a) => {
            payload.push(if allocate { OP_ALLOCATE } else { OP_RELEASE });
            payload.extend_from_slice(&a.octets());
            // An IPv4 cursor is an offset among at most 2^32 addresses.
            let cursor = u32::try_from(cursor).unwrap_or(0);
            payload.extend_from_slice(&cursor.to_le_bytes());
        }
        IpAddr::V6(a) => {
            payload.push(if allocate { OP_ALLOCATE6 } else { OP_RELEASE6 });
            payload.extend_from_slice(&a.octets());
            payload.extend_from_slice(&cursor.to_le_bytes());
        }
    }
    payload.extend_from_slice(&u16::try_from(id.len()).unwrap_or(0).to_le_bytes());
    payload.extend_from_slice(id);
    let mut out = Vec::with_capacity(MAX_RECORD);
    out.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&crc32(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out.resize(out.len().div_ceil(8) * 8, 0);
    out
}

fn decode_payload(p: &[u8]) -> Option<Record> {
    let (&op, rest) = p.split_first()?;
    let (address, cursor, rest) = match op {
        OP_ALLOCATE | OP_RELEASE => {
            let a = Ipv4Addr::from(<[u8; 4]>::try_from(rest.get(..4)?).ok()?);
            let cursor = u32::from_le_bytes(rest.get(4..8)?.try_into().ok()?);
            (IpAddr::V4(a), u128::from(cursor), rest.get(8..)?)
        }
        OP_ALLOCATE6 | OP_RELEASE6 => {
            let a = Ipv6Addr::from(<[u8; 16]>::try_from(rest.get(..16)?).ok()?);
            let cursor = u128::from_le_bytes(rest.get(16..32)?.try_into().ok()?);
            (IpAddr::V6(a), cursor, rest.get(32..)?)
        }
        _ => return None,
    };
    let id_len = usize::from(u16::from_le_bytes(rest.get(..2)?.try_into().ok()?));
    let id_bytes = rest.get(2..)?;
    if id_bytes.len() != id_len {
        return None;
    }
    let id = std::str::from_utf8(id_bytes).ok()?.to_string();
    match op {
        OP_ALLOCATE | OP_ALLOCATE6 => Some(Record::Allocate {
            id,
            address,
            cursor,
        }),
        _ => Some(Record::Release { id, address }),
    }
}

/// Parses a whole journal file. A torn last record is dropped (and counted);
/// damage anywhere else is an error.
pub(crate) fn read(bytes: &[u8]) -> Result<Contents, JournalError> {
    let corrupt = |s: String| Err(JournalError::Corrupt(s));
    let Some(h) = bytes.get(..HEADER_LEN as usize) else {
        return corrupt(format!(
            "journal header is truncated ({} bytes)",
            bytes.len()
        ));
    };
    if &h[..8] != MAGIC {
        return corrupt("not a tortie IPAM journal (bad magic)".into());
    }
    let generation = u64::from_le_bytes(h[8..16].try_into().unwrap_or_default());
    if h[..] != header(generation)[..] {
        return corrupt("journal header checksum mismatch".into());
    }
    let mut records = Vec::new();
    let mut pos = HEADER_LEN as usize;
    loop {
        match record_at(bytes, pos) {
            Some((record, len)) => {
                records.push(record);
                pos += len;
            }
            None => {
                // End of the good records: allow one incomplete record here
                // (as long as its length field says, or the longest possible
                // when that is not valid), require zeros after it and no
                // valid record inside it.
                let window = claimed_len(bytes, pos).unwrap_or(MAX_RECORD);
                let tail_end = (pos + window).min(bytes.len());
                if let Some(at) = (pos + 8..tail_end)
                    .step_by(8)
                    .find(|&at| record_at(bytes, at).is_some())
                {
                    return corrupt(format!(
                        "journal record at offset {pos} is damaged and a valid record follows it at offset {at} (after {} good records)",
                        records.len()
                    ));
                }
                let torn = bytes.get(pos..tail_end).unwrap_or_default();
                let rest = bytes.get(tail_end..).unwrap_or_default();
                if let Some(i) = rest.iter().position(|&b| b != 0) {
                    return corrupt(format!(
                        "journal record at offset {pos} is damaged and data follows it (non-zero byte at offset {}, after {} good records)",
                        tail_end + i,
                        records.len()
                    ));
                }
                let torn_bytes = torn.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                return Ok(Contents {
                    generation,
                    records,
                    torn_bytes,
                });
            }
        }
    }
}

/// The framed length the record at `pos` claims, when that is in range.
fn claimed_len(bytes: &[u8], pos: usize) -> Option<usize> {
    let len = u32::from_le_bytes(bytes.get(pos..pos.checked_add(4)?)?.try_into().ok()?);
    let len = usize::try_from(len).ok()?;
    (FIXED_PAYLOAD..=MAX_PAYLOAD)
        .contains(&len)
        .then(|| (FRAME_HEADER + len).div_ceil(8) * 8)
}

/// The valid record at `pos` and its framed length.
fn record_at(bytes: &[u8], pos: usize) -> Option<(Record, usize)> {
    let frame = bytes.get(pos..pos.checked_add(FRAME_HEADER)?)?;
    let len = usize::try_from(u32::from_le_bytes(frame[..4].try_into().ok()?)).ok()?;
    if !(FIXED_PAYLOAD..=MAX_PAYLOAD).contains(&len) {
        return None;
    }
    let crc = u32::from_le_bytes(frame[4..8].try_into().ok()?);
    let start = pos + FRAME_HEADER;
    let payload = bytes.get(start..start + len)?;
    if crc32(payload) != crc {
        return None;
    }
    let framed = (FRAME_HEADER + len).div_ceil(8) * 8;
    // The padding must be there (and zero) too, or the record is torn.
    if bytes
        .get(start + len..pos + framed)?
        .iter()
        .any(|&b| b != 0)
    {
        return None;
    }
    Some((decode_payload(payload)?, framed))
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE 802.3, as in zlib/gzip).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC_TABLE[usize::from((c as u8) ^ b)] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(i: u32) -> Record {
        Record::Allocate {
            id: format!("{i:064x}"),
            address: IpAddr::V4(Ipv4Addr::from(0x0af4_0100 + i)),
            cursor: u128::from(i + 1),
        }
    }

    fn journal_with(records: &[Record]) -> Vec<u8> {
        let mut bytes = fresh(7);
        let mut pos = HEADER_LEN as usize;
        for r in records {
            let e = encode(r);
            bytes[pos..pos + e.len()].copy_from_slice(&e);
            pos += e.len();
        }
        bytes
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn records_round_trip() {
        let records = vec![
            alloc(1),
            Record::Release {
                id: "é".into(),
                address: IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)),
            },
            alloc(2),
            Record::Allocate {
                id: "x".repeat(256),
                address: "fd00:10:244:1::7".parse().expect("ip"),
                cursor: u128::MAX - 3,
            },
            Record::Release {
                id: "v6".into(),
                address: "fd00:10:244:1::7".parse().expect("ip"),
            },
        ];
        let c = read(&journal_with(&records)).expect("read");
        assert!(records.iter().all(|r| encode(r).len() <= MAX_RECORD));
        assert_eq!((c.generation, c.records, c.torn_bytes), (7, records, 0));
    }

    #[test]
    fn a_flipped_bit_in_a_middle_record_is_corruption() {
        let bytes = journal_with(&[alloc(1), alloc(2), alloc(3)]);
        let second = HEADER_LEN as usize + encode(&alloc(1)).len();
        for offset in second..second + encode(&alloc(2)).len() {
            let mut b = bytes.clone();
            b[offset] ^= 0x10;
            assert!(read(&b).is_err(), "flip at {offset} accepted");
        }
    }

    #[test]
    fn reading_never_panics_on_mutated_journals() {
        let good = journal_with(&(0..20).map(alloc).collect::<Vec<_>>());
        let good = &good[..2000];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % 1_000_003).unwrap_or(0)
        };
        for _ in 0..5000 {
            let mut b = good.to_vec();
            let at = next() % b.len();
            match next() % 3 {
                0 => b[at] = u8::try_from(next() % 256).unwrap_or(0),
                1 => {
                    b.remove(at);
                }
                _ => b.truncate(at),
            }
            if let Ok(c) = read(&b) {
                assert!(c.records.len() <= 20);
            }
        }
    }
}

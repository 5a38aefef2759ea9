//! The hash chain: sealing a record into its writer's chain, and checking every writer's chain.
//!
//! The canonical form hashed is the record as a JSON object without `hash`, keys sorted at
//! every level, no whitespace. Verification works on that JSON, not on the Rust types, so a
//! field added, removed or changed by anyone also changes the hash.

use super::{AuditRecord, Entry};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// The `prev` of a writer's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where a writer's chain stands: what its next record links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The writer.
    pub writer: String,
    /// The seq of the last record sealed (0 before the first).
    pub seq: u64,
    /// The hash of the last record sealed ([`GENESIS`] before the first).
    pub hash: String,
}

impl Link {
    /// A new chain for `writer`.
    pub fn genesis(writer: impl Into<String>) -> Self {
        Self {
            writer: writer.into(),
            seq: 0,
            hash: GENESIS.into(),
        }
    }
}

/// Seals `entry` as the next record after `link`, and moves `link` on to it.
pub fn seal(link: &mut Link, entry: Entry) -> AuditRecord {
    let mut record = AuditRecord {
        writer: link.writer.clone(),
        seq: link.seq + 1,
        prev: link.hash.clone(),
        entry,
        hash: String::new(),
    };
    record.hash = match serde_json::to_value(&record) {
        Ok(Value::Object(fields)) => digest(&fields),
        // A struct of strings, numbers and options always serializes to an object.
        _ => unreachable!("an audit record serializes to a JSON object"),
    };
    link.seq = record.seq;
    link.hash = record.hash.clone();
    record
}

/// SHA-256, lowercase hex, of the canonical form of `fields` without `hash`.
fn digest(fields: &Map<String, Value>) -> String {
    let mut text = Vec::with_capacity(512);
    write_object(fields.iter().filter(|(key, _)| *key != "hash"), &mut text);
    hex::encode(Sha256::digest(&text))
}

/// Writes `value` as compact JSON with every object's keys sorted.
fn canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(fields) => write_object(fields.iter(), out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out);
            }
            out.push(b']');
        }
        scalar => write_json(scalar, out),
    }
}

/// Writes an object of `fields` with its keys sorted, each value in canonical form.
fn write_object<'a>(fields: impl Iterator<Item = (&'a String, &'a Value)>, out: &mut Vec<u8>) {
    let mut sorted: Vec<(&String, &Value)> = fields.collect();
    // A JSON object's keys are unique, so an unstable sort gives the one order.
    sorted.sort_unstable_by_key(|(key, _)| *key);
    out.push(b'{');
    for (i, (key, value)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json(key, out);
        out.push(b':');
        canonical(value, out);
    }
    out.push(b'}');
}

/// Writes `value` as compact JSON, escaped as serde_json escapes.
fn write_json<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // A string or a JSON scalar always serializes, and writing to a `Vec` cannot fail.
    serde_json::to_writer(out, value).expect("a JSON scalar writes to memory");
}

/// Where a writer's chain must start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At seq 1: nothing was ever removed from the topic.
    First,
    /// Anywhere: the broker's retention removed the oldest records, so a writer's first record
    /// still there may be past seq 1 (its `prev` is then not checked). Only a writer's start
    /// can be missing: a gap after it is still a broken link.
    AfterRetention,
}

/// The first broken link found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("writer `{writer}`, seq {seq}: {problem}")]
pub struct BrokenLink {
    /// The writer whose chain breaks (`?` when the record does not say).
    pub writer: String,
    /// The seq at which it breaks: of the record that is wrong, or of the one missing.
    pub seq: u64,
    /// What is wrong.
    pub problem: String,
}

/// What one writer's verified chain holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterSummary {
    /// The seq of its first record on the topic (1 unless retention removed older ones).
    pub first_seq: u64,
    /// Its last seq.
    pub last_seq: u64,
    /// Records that were exact repeats of one already read (a publish the bus took twice).
    pub repeats: u64,
}

/// Every writer's verified chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// By writer id.
    pub writers: BTreeMap<String, WriterSummary>,
}

impl Summary {
    /// Records verified, over all writers (repeats not counted).
    pub fn records(&self) -> u64 {
        self.writers
            .values()
            .map(|w| w.last_seq + 1 - w.first_seq)
            .sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "audit trail OK: {} record(s) from {} writer(s)",
            self.records(),
            self.writers.len()
        )?;
        for (writer, chain) in &self.writers {
            write!(
                f,
                "  {writer}: {} record(s), seq {}..={}",
                chain.last_seq + 1 - chain.first_seq,
                chain.first_seq,
                chain.last_seq
            )?;
            if chain.repeats > 0 {
                write!(f, " ({} repeat(s) skipped)", chain.repeats)?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Checks every writer's chain in `records` (payloads in topic order: by partition, then
/// offset), each starting at seq 1. See [`verify_with`].
pub fn verify<P: AsRef<[u8]>>(records: impl IntoIterator<Item = P>) -> Result<Summary, BrokenLink> {
    verify_with(records, Start::First)
}

/// Checks every writer's chain in `records`: seqs follow one another without gaps, each
/// `prev` is the hash of the record before, each `hash` recomputes. An exact repeat of a
/// record already read is skipped (the bus may take a publish twice). Answers the first
/// broken link.
pub fn verify_with<P: AsRef<[u8]>>(
    records: impl IntoIterator<Item = P>,
    start: Start,
) -> Result<Summary, BrokenLink> {
    let mut chains: HashMap<String, Chain> = HashMap::new();
    for payload in records {
        let sealed = Sealed::parse(payload.as_ref())?;
        match chains.get_mut(&sealed.writer) {
            Some(chain) => chain.follow(sealed)?,
            None => {
                let chain = Chain::begin(sealed, start)?;
                chains.insert(chain.writer.clone(), chain);
            }
        }
    }
    Ok(Summary {
        writers: chains
            .into_values()
            .map(|chain| (chain.writer, chain.summary))
            .collect(),
    })
}

/// A record read back: the fields the chain needs, and whether its hash recomputes.
struct Sealed {
    writer: String,
    seq: u64,
    prev: String,
    hash: String,
    recomputed: String,
}

impl Sealed {
    /// Reads the chain's fields of `payload`.
    fn parse(payload: &[u8]) -> Result<Self, BrokenLink> {
        let unreadable = |writer: &str, seq: u64, why: String| BrokenLink {
            writer: writer.to_owned(),
            seq,
            problem: format!("the record cannot be read: {why}"),
        };
        let fields = match serde_json::from_slice::<Value>(payload) {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => return Err(unreadable("?", 0, "it is not a JSON object".into())),
            Err(e) => return Err(unreadable("?", 0, format!("it is not JSON ({e})"))),
        };
        let text = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_owned);
        let writer = text("writer").unwrap_or_else(|| "?".into());
        let seq = fields.get("seq").and_then(Value::as_u64).unwrap_or(0);
        let missing = |name: &str| unreadable(&writer, seq, format!("it has no `{name}`"));
        if !fields.contains_key("writer") || seq == 0 {
            return Err(missing(if seq == 0 { "seq" } else { "writer" }));
        }
        Ok(Self {
            prev: text("prev").ok_or_else(|| missing("prev"))?,
            hash: text("hash").ok_or_else(|| missing("hash"))?,
            recomputed: digest(&fields),
            writer,
            seq,
        })
    }
}

/// One writer's chain as verified so far.
struct Chain {
    writer: String,
    /// The hash of each seq accepted, to tell a repeat from a forgery.
    hashes: HashMap<u64, String>,
    summary: WriterSummary,
}

impl Chain {
    /// A chain whose first record on the topic is `first`.
    fn begin(first: Sealed, start: Start) -> Result<Self, BrokenLink> {
        let mut chain = Self {
            writer: first.writer.clone(),
            hashes: HashMap::new(),
            summary: WriterSummary {
                first_seq: first.seq,
                last_seq: first.seq - 1,
                repeats: 0,
            },
        };
        if first.seq != 1 && start == Start::First {
            return Err(chain.broken(
                1,
                format!(
                    "missing: the writer's first record on the topic is seq {}",
                    first.seq
                ),
            ));
        }
        chain.check_hash(&first)?;
        if first.seq == 1 && first.prev != GENESIS {
            return Err(chain.broken(1, "`prev` of a first record is not the genesis value"));
        }
        chain.accept(first);
        Ok(chain)
    }

    /// Checks that `next` follows the chain, and adds it.
    fn follow(&mut self, next: Sealed) -> Result<(), BrokenLink> {
        let expected = self.summary.last_seq + 1;
        if next.seq < expected {
            if self.hashes.get(&next.seq) == Some(&next.hash) && next.hash == next.recomputed {
                self.summary.repeats += 1;
                return Ok(());
            }
            return Err(self.broken(
                next.seq,
                format!(
                    "found again after seq {} with other content",
                    self.summary.last_seq
                ),
            ));
        }
        if next.seq > expected {
            return Err(self.broken(
                expected,
                format!(
                    "missing: the record after seq {} is seq {}",
                    expected - 1,
                    next.seq
                ),
            ));
        }
        self.check_hash(&next)?;
        if self.hashes.get(&self.summary.last_seq) != Some(&next.prev) {
            return Err(self.broken(
                next.seq,
                format!(
                    "`prev` is not the hash of seq {}: that record was altered, or this one \
                     does not belong here",
                    self.summary.last_seq
                ),
            ));
        }
        self.accept(next);
        Ok(())
    }

    /// The record's `hash` must be that of its content.
    fn check_hash(&self, record: &Sealed) -> Result<(), BrokenLink> {
        if record.hash == record.recomputed {
            Ok(())
        } else {
            Err(self.broken(
                record.seq,
                "its `hash` does not match its content: the record was altered",
            ))
        }
    }

    fn accept(&mut self, record: Sealed) {
        self.summary.last_seq = record.seq;
        self.hashes.insert(record.seq, record.hash);
    }

    fn broken(&self, seq: u64, problem: impl Into<String>) -> BrokenLink {
        BrokenLink {
            writer: self.writer.clone(),
            seq,
            problem: problem.into(),
        }
    }
}

#[cfg(test)]
mod tests;

//! The stored contract: one record per plan version in the `plans_v1` table, keyed by its
//! effective-from time in ms, in a versioned, checksummed byte form.
//!
//! Layout of version 1: `version, presence varint, fields…, checksum` where bit `i` of
//! `presence` says whether field `i` follows: download maximum, normally available, minimum,
//! advertised, then the same four for upload (each bytes/s, a float as the sample codec writes
//! it), then the latency maximum (µs varint). The threshold (a float in millionths) always
//! follows. `checksum` is the CRC-32 (4 bytes, little-endian) of the key and the record before
//! it, so a changed byte, or a record moved to another key, is detected when it is read, and
//! the version is refused rather than obeyed.
//!
//! The table came after sample format 3 and is optional: a store written before it has no
//! plan history, which reads as none, and is not rewritten on opening. Adding it changes no
//! sample record, so the sample format version stays 3; an older program ignores the table.

use std::time::Duration;

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};

use super::codec::{DecodeError, Reader, put_float, put_varint, seal, unseal};
use super::{Store, StoreError};
use crate::plan::{PlanHistory, PlanVersion, Speeds};
use crate::time::Timestamp;
use crate::units::Bandwidth;

/// Plan versions by effective-from time (ms since the epoch).
pub(super) const PLANS: TableDefinition<u64, &[u8]> = TableDefinition::new("plans_v1");

/// The version written.
pub(crate) const PLAN_RECORD_VERSION: u8 = 1;
/// The most plan versions a store keeps: a contract changes a few times a year, and each
/// version is about 500 bytes of `/api/v1/plan`, so that answer stays under about 500 KB.
pub(crate) const MAX_PLAN_VERSIONS: u64 = 1000;
/// Fields 0..=7 are the speeds, 8 the latency; higher bits are unknown.
const LATENCY_BIT: u64 = 1 << 8;
const KNOWN_BITS: u64 = (1 << 9) - 1;
const PER_SECOND: f64 = 1.0;
const MILLIONTHS: f64 = 1e6;

/// The record of `version`, to be stored at key `version.from` in ms.
pub fn encode(version: &PlanVersion) -> Vec<u8> {
    let speeds = speeds_of(version);
    let mut presence = 0u64;
    for (bit, speed) in speeds.iter().enumerate() {
        if speed.is_some() {
            presence |= 1 << bit;
        }
    }
    if version.latency_max.is_some() {
        presence |= LATENCY_BIT;
    }
    let mut out = vec![PLAN_RECORD_VERSION];
    put_varint(&mut out, presence);
    for speed in speeds.iter().flatten() {
        put_float(&mut out, speed.bytes_per_second(), PER_SECOND);
    }
    if let Some(latency) = version.latency_max {
        put_varint(
            &mut out,
            u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
        );
    }
    put_float(&mut out, version.threshold, MILLIONTHS);
    seal(version.from.as_millis(), out)
}

/// The version stored at `millis` as `bytes`, checked against its checksum and its bounds.
pub fn decode(millis: u64, bytes: &[u8]) -> Result<PlanVersion, DecodeError> {
    let fields = unseal(millis, bytes, PLAN_RECORD_VERSION)?;
    let from = Timestamp::try_from_millis(millis)
        .filter(|time| *time < Timestamp::MAX)
        .ok_or(DecodeError::Malformed)?;
    let mut reader = Reader(fields);
    let presence = reader.varint()?;
    if presence & !KNOWN_BITS != 0 {
        return Err(DecodeError::Malformed);
    }
    let mut speeds = [None; 8];
    for (bit, speed) in speeds.iter_mut().enumerate() {
        if presence & (1 << bit) != 0 {
            *speed = Some(Bandwidth::from_bytes_per_second(reader.float(PER_SECOND)?));
        }
    }
    let latency_max = if presence & LATENCY_BIT != 0 {
        Some(Duration::from_micros(reader.varint()?))
    } else {
        None
    };
    let threshold = reader.float(MILLIONTHS)?;
    if !reader.0.is_empty() {
        return Err(DecodeError::Malformed);
    }
    let [
        dmax,
        dnormal,
        dmin,
        dadvertised,
        umax,
        unormal,
        umin,
        uadvertised,
    ] = speeds;
    let version = PlanVersion {
        from,
        download: Speeds {
            maximum: dmax,
            normally_available: dnormal,
            minimum: dmin,
            advertised: dadvertised,
        },
        upload: Speeds {
            maximum: umax,
            normally_available: unormal,
            minimum: umin,
            advertised: uadvertised,
        },
        latency_max,
        threshold,
    };
    // Bytes that pass the checksum yet break the bounds were never written by this program.
    version.validate().map_err(|_| DecodeError::Malformed)?;
    Ok(version)
}

/// CRC-32 of the key (ms, little-endian) and the record before the checksum.
fn speeds_of(version: &PlanVersion) -> [Option<Bandwidth>; 8] {
    let (d, u) = (&version.download, &version.upload);
    [
        d.maximum,
        d.normally_available,
        d.minimum,
        d.advertised,
        u.maximum,
        u.normally_available,
        u.minimum,
        u.advertised,
    ]
}

/// What [`Store::import_plans`] did: versions added, left as they were (the same record was
/// stored), and replaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PlansImported {
    pub(crate) added: u64,
    pub(crate) unchanged: u64,
    pub(crate) replaced: u64,
}

/// What [`Store::set_plan`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PlanStored {
    /// No version had that `from`: the version was added.
    Added,
    /// A version had that `from` and `replace` was given: it was replaced.
    Replaced,
}

impl Store {
    /// Every stored plan version, oldest first; an empty history when the file has no plan
    /// table (written before plans were stored). A damaged record is an error
    /// ([`StoreError::PlanDecode`]), never a version.
    pub fn plan_history(&self) -> Result<PlanHistory, StoreError> {
        let versions = self.read_keyed(PLANS, decode, |time, cause| StoreError::PlanDecode {
            path: self.path.clone(),
            time,
            cause,
        })?;
        Ok(PlanHistory::new(versions))
    }

    /// Stores `version` durably at its `from`. A version already there is replaced only when
    /// `replace`; otherwise [`StoreError::PlanExists`] and nothing changes. A new version beyond
    /// [`MAX_PLAN_VERSIONS`] is refused ([`StoreError::PlanLimit`]); a replacement is not. The caller has
    /// validated `version` ([`PlanVersion::validate`]).
    pub(crate) fn set_plan(
        &self,
        version: &PlanVersion,
        replace: bool,
    ) -> Result<PlanStored, StoreError> {
        let millis = version.from.as_millis();
        let record = encode(version);
        self.guarded(|| {
            self.write(|txn| {
                let mut table = txn.open_table(PLANS).map_err(|e| self.redb(e))?;
                let taken = table.get(millis).map_err(|e| self.redb(e))?.is_some();
                if taken && !replace {
                    return Err(StoreError::PlanExists {
                        path: self.path.clone(),
                        time: version.from,
                    });
                }
                if !taken && table.len().map_err(|e| self.redb(e))? >= MAX_PLAN_VERSIONS {
                    return Err(StoreError::PlanLimit {
                        path: self.path.clone(),
                        max: MAX_PLAN_VERSIONS,
                    });
                }
                table
                    .insert(millis, record.as_slice())
                    .map_err(|e| self.redb(e))?;
                Ok(if taken {
                    PlanStored::Replaced
                } else {
                    PlanStored::Added
                })
            })
        })
    }

    /// Stores `versions` (from `plan import`) in one transaction: all or none. A version whose
    /// `from` is free is added; one whose record equals the stored one is left as it is; one
    /// that differs from the stored version at its `from` replaces it only when `replace`,
    /// else [`StoreError::PlanExists`] names the first such time and nothing changes. More than
    /// [`MAX_PLAN_VERSIONS`] in all is [`StoreError::PlanLimit`]. The caller has validated each.
    pub(crate) fn import_plans(
        &self,
        versions: &[PlanVersion],
        replace: bool,
    ) -> Result<PlansImported, StoreError> {
        self.guarded(|| {
            self.write(|txn| {
                let mut table = txn.open_table(PLANS).map_err(|e| self.redb(e))?;
                let mut imported = PlansImported::default();
                for version in versions {
                    let millis = version.from.as_millis();
                    let record = encode(version);
                    let stored = table
                        .get(millis)
                        .map_err(|e| self.redb(e))?
                        .map(|value| value.value().to_vec());
                    match stored {
                        Some(stored) if stored == record => {
                            imported.unchanged += 1;
                            continue;
                        }
                        Some(_) if !replace => {
                            return Err(StoreError::PlanExists {
                                path: self.path.clone(),
                                time: version.from,
                            });
                        }
                        Some(_) => imported.replaced += 1,
                        None => {
                            if table.len().map_err(|e| self.redb(e))? >= MAX_PLAN_VERSIONS {
                                return Err(StoreError::PlanLimit {
                                    path: self.path.clone(),
                                    max: MAX_PLAN_VERSIONS,
                                });
                            }
                            imported.added += 1;
                        }
                    }
                    table
                        .insert(millis, record.as_slice())
                        .map_err(|e| self.redb(e))?;
                }
                Ok(imported)
            })
        })
    }

    /// Reads every plan record for `db check`: how many there are, and each damaged one by its
    /// key's time with what is wrong.
    pub(super) fn walk_plans(
        &self,
        txn: &redb::ReadTransaction,
        damaged: &mut Vec<(String, String)>,
    ) -> Result<u64, StoreError> {
        let (read, found) = self.walk_keyed(txn, PLANS, decode)?;
        damaged.extend(
            found
                .into_iter()
                .map(|(time, cause)| (time, cause.to_string())),
        );
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version() -> PlanVersion {
        let rate = |text: &str| Some(text.parse::<Bandwidth>().unwrap());
        PlanVersion {
            from: Timestamp::from_millis(1_780_000_000_123),
            download: Speeds {
                maximum: rate("250Mbit/s"),
                normally_available: rate("200Mbit/s"),
                minimum: rate("100Mbit/s"),
                advertised: rate("250Mbit/s"),
            },
            upload: Speeds {
                maximum: rate("40Mbit/s"),
                normally_available: None,
                minimum: rate("10.5Mbit/s"),
                advertised: None,
            },
            latency_max: Some(Duration::from_millis(35)),
            threshold: 0.9,
        }
    }

    /// The fuzz target `plan_record`'s seeds: the key (ms, u64 little-endian) then a record.
    /// Each seed must decode, so that the fuzzer starts from records this program writes;
    /// `UPDATE_FUZZ_SEEDS=1` rewrites them from [`version`] and a sparse version.
    #[test]
    fn fuzz_seeds_decode() {
        super::super::keyed::check_fuzz_seeds(
            "plan_record",
            || {
                let full = version();
                let sparse = PlanVersion {
                    from: Timestamp::from_millis(0),
                    download: Speeds::advertised("100Mbit/s".parse().ok()),
                    upload: Speeds::default(),
                    latency_max: None,
                    threshold: 0.8,
                };
                [("full", full), ("sparse", sparse)]
                    .into_iter()
                    .map(|(name, v)| (name, v.from.as_millis(), encode(&v)))
                    .collect()
            },
            decode,
        );
    }

    #[test]
    fn the_store_keeps_at_most_max_plan_versions_yet_replaces_any() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let at = |i: u64| PlanVersion {
            from: Timestamp::from_millis(i * 1000),
            ..version()
        };
        for i in 0..MAX_PLAN_VERSIONS {
            assert_eq!(store.set_plan(&at(i), false).unwrap(), PlanStored::Added);
        }
        let refused = store.set_plan(&at(MAX_PLAN_VERSIONS), false).unwrap_err();
        assert!(matches!(
            refused,
            StoreError::PlanLimit {
                max: MAX_PLAN_VERSIONS,
                ..
            }
        ));
        assert!(
            refused.to_string().contains("plan set --replace"),
            "{refused}"
        );
        assert_eq!(store.set_plan(&at(7), true).unwrap(), PlanStored::Replaced);
        assert_eq!(
            store.plan_history().unwrap().versions().len() as u64,
            MAX_PLAN_VERSIONS
        );
    }

    #[test]
    fn a_version_round_trips() {
        let v = version();
        let bytes = encode(&v);
        assert_eq!(bytes[0], PLAN_RECORD_VERSION);
        assert_eq!(decode(v.from.as_millis(), &bytes), Ok(v));
        let sparse = PlanVersion {
            download: Speeds::advertised("1Gbit/s".parse().ok()),
            upload: Speeds::default(),
            latency_max: None,
            threshold: 1.0,
            ..v
        };
        assert_eq!(decode(v.from.as_millis(), &encode(&sparse)), Ok(sparse));
    }

    #[test]
    fn every_changed_byte_is_detected() {
        let v = version();
        let bytes = encode(&v);
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80] {
                let mut damaged = bytes.clone();
                damaged[i] ^= flip;
                assert!(
                    decode(v.from.as_millis(), &damaged).is_err(),
                    "byte {i} ^ {flip:#x} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn a_moved_truncated_or_unknown_record_is_refused() {
        let v = version();
        let bytes = encode(&v);
        let millis = v.from.as_millis();
        assert_eq!(decode(millis + 1, &bytes), Err(DecodeError::RecordChecksum));
        // A plan record refers to no server/ISP/engine entry: the message does not say so.
        let said = DecodeError::RecordChecksum.to_string();
        assert!(!said.contains("server/ISP/engine"), "{said}");
        assert!(decode(millis, &bytes[..bytes.len() - 1]).is_err());
        assert_eq!(decode(millis, &[]), Err(DecodeError::Malformed));
        assert_eq!(
            decode(millis, &[9, 0, 0, 0, 0, 0]),
            Err(DecodeError::UnknownVersion(9))
        );
    }

    #[test]
    fn bytes_with_a_valid_checksum_but_broken_bounds_are_refused() {
        // A threshold of 2 was never written: recompute the checksum as a forger would.
        let mut out = vec![PLAN_RECORD_VERSION];
        put_varint(&mut out, 1);
        put_float(&mut out, 1e6, PER_SECOND);
        put_float(&mut out, 2.0, MILLIONTHS);
        let out = seal(0, out);
        assert_eq!(decode(0, &out), Err(DecodeError::Malformed));
    }
}

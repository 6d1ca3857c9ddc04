//! The stored measurement campaigns (`serve --campaign`): one record per campaign in the
//! `campaigns_v1` table, keyed by its start time in ms, in a versioned, checksummed byte form.
//!
//! Layout of version 1: `version, rule set name, zone name, finished, checksum`: the names as
//! length-prefixed UTF-8 (varint length), `finished` a byte 0 (running) or 1 followed by the
//! finish time in ms (varint). `checksum` is the CRC-32 (4 bytes, little-endian) of the key
//! and the record before it, as in `plans_v1`. Which runs belong to a campaign is in the runs
//! themselves (trigger `campaign`, sample format 4); this table says which rule set and zone
//! they follow and whether the campaign finished. An older program ignores the table.

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};

use super::codec::{DecodeError, Reader, put_varint, seal, unseal};
use super::{Store, StoreError};
use crate::campaign::Campaign;
use crate::rules::RuleSet;
use crate::time::Timestamp;
use crate::zone::{MAX_ZONE_NAME, Zone};

/// Campaigns by start time (ms since the epoch).
pub(super) const CAMPAIGNS: TableDefinition<u64, &[u8]> = TableDefinition::new("campaigns_v1");

/// The version written.
pub(crate) const CAMPAIGN_RECORD_VERSION: u8 = 1;
/// The most campaigns a store keeps (each takes days; a thousand is decades).
pub(crate) const MAX_CAMPAIGNS: u64 = 1000;

/// The record of `campaign`, to be stored at key `campaign.start` in ms.
pub fn encode(campaign: &Campaign) -> Vec<u8> {
    let mut out = vec![CAMPAIGN_RECORD_VERSION];
    for text in [campaign.rules.name(), campaign.zone.name()] {
        put_varint(&mut out, text.len() as u64);
        out.extend_from_slice(text.as_bytes());
    }
    match campaign.finished {
        None => out.push(0),
        Some(time) => {
            out.push(1);
            put_varint(&mut out, time.as_millis());
        }
    }
    seal(campaign.start.as_millis(), out)
}

/// The campaign stored at `millis` as `bytes`, checked against its checksum.
pub fn decode(millis: u64, bytes: &[u8]) -> Result<Campaign, DecodeError> {
    let fields = unseal(millis, bytes, CAMPAIGN_RECORD_VERSION)?;
    let start = Timestamp::try_from_millis(millis)
        .filter(|time| *time < Timestamp::MAX)
        .ok_or(DecodeError::Malformed)?;
    let mut reader = Reader(fields);
    let rules = RuleSet::parse(&reader.string()?).map_err(|_| DecodeError::Malformed)?;
    let zone_name = reader.string()?;
    if zone_name.len() > MAX_ZONE_NAME {
        return Err(DecodeError::Malformed);
    }
    let zone = Zone::parse(&zone_name).map_err(|_| DecodeError::Malformed)?;
    let finished = match reader.byte()? {
        0 => None,
        1 => Some(
            Timestamp::try_from_millis(reader.varint()?)
                .filter(|time| *time >= start)
                .ok_or(DecodeError::Malformed)?,
        ),
        _ => return Err(DecodeError::Malformed),
    };
    if !reader.0.is_empty() || !rules.has_campaign() {
        return Err(DecodeError::Malformed);
    }
    Ok(Campaign {
        start,
        rules,
        zone,
        finished,
    })
}

impl Store {
    /// Every stored campaign, oldest first; none when the file has no campaign table. A
    /// damaged record is an error ([`StoreError::CampaignDecode`]), never a campaign.
    pub fn campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        self.read_keyed(CAMPAIGNS, decode, |time, cause| {
            StoreError::CampaignDecode {
                path: self.path.clone(),
                time,
                cause,
            }
        })
    }

    /// Stores `campaign` durably at its start, replacing the record there (a campaign that
    /// finished). A new one beyond [`MAX_CAMPAIGNS`] is refused ([`StoreError::CampaignLimit`]).
    pub(crate) fn put_campaign(&self, campaign: &Campaign) -> Result<(), StoreError> {
        let millis = campaign.start.as_millis();
        let record = encode(campaign);
        self.guarded(|| {
            self.write(|txn| {
                let mut table = txn.open_table(CAMPAIGNS).map_err(|e| self.redb(e))?;
                let taken = table.get(millis).map_err(|e| self.redb(e))?.is_some();
                if !taken && table.len().map_err(|e| self.redb(e))? >= MAX_CAMPAIGNS {
                    return Err(StoreError::CampaignLimit {
                        path: self.path.clone(),
                        max: MAX_CAMPAIGNS,
                    });
                }
                table
                    .insert(millis, record.as_slice())
                    .map_err(|e| self.redb(e))?;
                Ok(())
            })
        })
    }

    /// Reads every campaign record for `db check`: how many there are; each damaged one is a
    /// finding in `structure`.
    pub(super) fn walk_campaigns(
        &self,
        txn: &redb::ReadTransaction,
        damaged: &mut Vec<String>,
    ) -> Result<u64, StoreError> {
        let (read, found) = self.walk_keyed(txn, CAMPAIGNS, decode)?;
        damaged.extend(
            found
                .into_iter()
                .map(|(time, cause)| format!("the campaign record from {time}: {cause}")),
        );
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campaign() -> Campaign {
        Campaign {
            start: Timestamp::from_millis(1_795_546_073_292),
            rules: RuleSet::DeBnetza,
            zone: Zone::parse("Europe/Berlin").unwrap(),
            finished: Some(Timestamp::from_millis(1_796_000_000_000)),
        }
    }

    /// The fuzz target `campaign_record`'s seeds: the key (ms, u64 little-endian) then a
    /// record. Each must decode, so that the fuzzer starts from records this program writes;
    /// `UPDATE_FUZZ_SEEDS=1` rewrites them from [`campaign`] finished and running.
    #[test]
    fn fuzz_seeds_decode() {
        super::super::keyed::check_fuzz_seeds(
            "campaign_record",
            || {
                let running = Campaign {
                    finished: None,
                    rules: RuleSet::AtRtr,
                    zone: Zone::parse("America/Argentina/Buenos_Aires").unwrap(),
                    ..campaign()
                };
                [("finished", campaign()), ("running", running)]
                    .into_iter()
                    .map(|(name, c)| (name, c.start.as_millis(), encode(&c)))
                    .collect()
            },
            decode,
        );
    }

    #[test]
    fn a_campaign_round_trips_and_every_changed_byte_is_detected() {
        for c in [
            campaign(),
            Campaign {
                finished: None,
                rules: RuleSet::AtRtr,
                ..campaign()
            },
        ] {
            let bytes = encode(&c);
            assert_eq!(decode(c.start.as_millis(), &bytes), Ok(c.clone()));
            for i in 0..bytes.len() {
                let mut damaged = bytes.clone();
                damaged[i] ^= 0x01;
                assert!(decode(c.start.as_millis(), &damaged).is_err(), "byte {i}");
            }
            assert!(decode(c.start.as_millis() + 1, &bytes).is_err());
        }
        assert_eq!(
            decode(0, &[7, 0, 0, 0, 0]),
            Err(DecodeError::UnknownVersion(7))
        );
    }

    #[test]
    fn the_store_keeps_campaigns_and_db_check_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.campaigns().unwrap(), vec![]);
        let running = Campaign {
            finished: None,
            ..campaign()
        };
        store.put_campaign(&running).unwrap();
        store.put_campaign(&campaign()).unwrap();
        assert_eq!(store.campaigns().unwrap(), vec![campaign()]);
        drop(store);
        let report = Store::check(&path).unwrap();
        assert_eq!(report.campaigns, 1);
        assert!(report.is_clean(), "{report:?}");
    }

    /// A damaged campaign record is refused by the rule sets that read campaigns, and keeps
    /// none of the others from judging the runs.
    #[test]
    fn a_damaged_campaign_record_stops_only_the_rule_sets_with_campaigns() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let c = campaign();
        let mut damaged = encode(&c);
        damaged[2] ^= 0x01;
        store
            .guarded(|| {
                store.write(|txn| {
                    let mut table = txn.open_table(CAMPAIGNS).map_err(|e| store.redb(e))?;
                    table
                        .insert(c.start.as_millis(), damaged.as_slice())
                        .map_err(|e| store.redb(e))?;
                    Ok::<_, StoreError>(())
                })
            })
            .unwrap();
        let (from, to) = (Timestamp::EPOCH, Timestamp::MAX);
        for rules in RuleSet::ALL {
            let selected = crate::rules::select(&store, rules, from, to);
            if rules.has_campaign() {
                assert!(
                    matches!(selected, Err(StoreError::CampaignDecode { .. })),
                    "{rules}: {selected:?}"
                );
            } else {
                assert!(selected.is_ok(), "{rules}: {selected:?}");
            }
        }
    }

    #[test]
    fn select_prefers_the_newest_campaign_of_the_rule_set() {
        use crate::sample::{Sample, Trigger};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let at = |minutes: u64| Timestamp::from_millis(1_795_000_000_000 + minutes * 60_000);
        let run = |minutes: u64, trigger: Trigger| Sample {
            download_bytes_per_second: Some(1e6),
            ..Sample::empty(at(minutes), trigger)
        };
        for (minutes, trigger) in [
            (0, Trigger::Schedule),
            (10, Trigger::Campaign),
            (20, Trigger::Schedule),
            (30, Trigger::Campaign),
            (40, Trigger::Campaign),
            (50, Trigger::Campaign),
        ] {
            store.append(&run(minutes, trigger)).unwrap();
        }
        let times = |selection: &crate::rules::Selection| -> Vec<Timestamp> {
            selection.runs.iter().map(|r| r.time).collect()
        };
        // No campaign record (an imported export): the campaign runs alone, never mixed with
        // the schedule's.
        let imported = crate::rules::select(&store, RuleSet::DeBnetza, at(0), at(60)).unwrap();
        assert_eq!(imported.campaign, Some(at(10)));
        assert_eq!(times(&imported), [at(10), at(30), at(40), at(50)]);
        // A rule set without campaigns judges every run.
        let fcc = crate::rules::select(&store, RuleSet::UsFcc, at(0), at(60)).unwrap();
        assert_eq!((fcc.runs.len(), fcc.campaign), (6, None));
        let without = crate::rules::select(&store, RuleSet::DeBnetza, at(0), at(5)).unwrap();
        assert_eq!((times(&without), without.campaign), (vec![at(0)], None));
        // An older finished campaign (10 min) and the newest, still running, from 25 min.
        store
            .put_campaign(&Campaign {
                start: at(5),
                finished: Some(at(10)),
                ..campaign()
            })
            .unwrap();
        store
            .put_campaign(&Campaign {
                start: at(25),
                finished: None,
                ..campaign()
            })
            .unwrap();
        let newest = crate::rules::select(&store, RuleSet::DeBnetza, at(0), at(60)).unwrap();
        assert_eq!(newest.campaign, Some(at(25)));
        assert_eq!(times(&newest), [at(30), at(40), at(50)]);
        // A window before the newest one sees the older campaign's run.
        let older = crate::rules::select(&store, RuleSet::DeBnetza, at(0), at(20)).unwrap();
        assert_eq!((times(&older), older.campaign), (vec![at(10)], Some(at(5))));
        // Another rule set has no campaign: every run.
        let other = crate::rules::select(&store, RuleSet::AtRtr, at(0), at(60)).unwrap();
        assert_eq!((other.runs.len(), other.campaign), (6, None));
    }
}

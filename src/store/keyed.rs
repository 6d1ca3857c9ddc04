//! Tables of keyed, sealed records (`plans_v1`, `campaigns_v1`; see `codec::seal`): every
//! record read and decoded, and every record walked for `db check`.

use redb::{ReadableTable, TableDefinition, TableError};

use super::codec::DecodeError;
use super::{Store, StoreError, key_time};

/// A table of sealed records keyed by a time in ms.
pub(super) type KeyedTable = TableDefinition<'static, u64, &'static [u8]>;

impl Store {
    /// Every record of `table`, oldest key first, decoded with `decode`; none when the file
    /// has no such table (written before it existed). The first record `decode` refuses is
    /// the error `damaged(its key's time, why)`, never a value.
    pub(super) fn read_keyed<T>(
        &self,
        table: KeyedTable,
        decode: fn(u64, &[u8]) -> Result<T, DecodeError>,
        damaged: impl Fn(String, DecodeError) -> StoreError,
    ) -> Result<Vec<T>, StoreError> {
        self.guarded(|| {
            let txn = self.begin_read()?;
            let table = match txn.open_table(table) {
                Ok(table) => table,
                Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(err) => return Err(self.redb(err)),
            };
            let mut values = Vec::new();
            for entry in table.iter().map_err(|e| self.redb(e))? {
                let (key, value) = entry.map_err(|e| self.redb(e))?;
                let millis = key.value();
                values.push(
                    decode(millis, value.value())
                        .map_err(|cause| damaged(key_time(millis), cause))?,
                );
            }
            Ok(values)
        })
    }

    /// For `db check`: how many records `table` holds, and each one `decode` refuses, by its
    /// key's time, with why.
    pub(super) fn walk_keyed<T>(
        &self,
        txn: &redb::ReadTransaction,
        table: KeyedTable,
        decode: fn(u64, &[u8]) -> Result<T, DecodeError>,
    ) -> Result<(u64, Vec<(String, DecodeError)>), StoreError> {
        let table = match txn.open_table(table) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok((0, Vec::new())),
            Err(err) => return Err(self.redb(err)),
        };
        let mut read = 0;
        let mut damaged = Vec::new();
        for entry in table.iter().map_err(|e| self.redb(e))? {
            let (key, value) = entry.map_err(|e| self.redb(e))?;
            read += 1;
            if let Err(cause) = decode(key.value(), value.value()) {
                damaged.push((key_time(key.value()), cause));
            }
        }
        Ok((read, damaged))
    }
}

/// For the fuzz targets of keyed records (`plan_record`, `campaign_record`): checks that every
/// seed in `fuzz/seeds/TARGET` (the key, ms as u64 little-endian, then a record) decodes with
/// `decode`, so that the fuzzer starts from records this program writes, and that there are at
/// least two. With `UPDATE_FUZZ_SEEDS=1` it first rewrites them from `records()`: each a
/// file name, its key and its record.
#[cfg(test)]
pub(super) fn check_fuzz_seeds<T>(
    target: &str,
    records: impl FnOnce() -> Vec<(&'static str, u64, Vec<u8>)>,
    decode: fn(u64, &[u8]) -> Result<T, DecodeError>,
) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    if std::env::var_os("UPDATE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, key, record) in records() {
            let mut seed = key.to_le_bytes().to_vec();
            seed.extend(record);
            std::fs::write(dir.join(name), seed).unwrap();
        }
    }
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let (key, record) = bytes.split_first_chunk::<8>().unwrap();
        assert!(decode(u64::from_le_bytes(*key), record).is_ok());
        seeds += 1;
    }
    assert!(seeds >= 2, "seeds in {}", dir.display());
}

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

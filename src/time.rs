//! Points in time as the store keys them: UTC milliseconds since the Unix epoch.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant with millisecond precision; its `u64` is the store key, so order is time order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

/// Why a time given by a user could not be understood.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{input:?} is neither an RFC 3339 time (2026-11-24T18:00:00Z) nor an age (7d, 24h)")]
pub struct TimeParseError {
    input: String,
}

impl Timestamp {
    pub const fn from_millis(millis: u64) -> Self {
        Timestamp(millis)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The current time, truncated to milliseconds. A clock before 1970 reads as the epoch.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    pub fn from_system_time(time: SystemTime) -> Self {
        let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        Timestamp(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }

    /// Seconds since the epoch, with the milliseconds as a fraction.
    pub fn as_seconds_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    pub fn saturating_add(self, duration: Duration) -> Self {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(millis))
    }

    pub fn saturating_sub(self, duration: Duration) -> Self {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_sub(millis))
    }

    /// The first instant of this time's calendar month in UTC, and of the next month.
    pub fn month(self) -> (Timestamp, Timestamp) {
        // Read the year and month off our own RFC 3339 form rather than doing calendar
        // arithmetic by hand: "2026-11-25T…" gives 2026 and 11.
        let text = self.to_string();
        let year: Option<u64> = text.get(0..4).and_then(|y| y.parse().ok());
        let month: Option<u64> = text.get(5..7).and_then(|m| m.parse().ok());
        let first_of = |year: u64, month: u64| {
            Timestamp::parse_rfc3339(&format!("{year:04}-{month:02}-01T00:00:00Z"))
        };
        let bounds = year.zip(month).and_then(|(year, month)| {
            let (next_year, next_month) = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
            first_of(year, month).zip(first_of(next_year, next_month))
        });
        bounds.unwrap_or((self, self.saturating_add(Duration::from_millis(1))))
    }

    /// Parses RFC 3339 (`Z` or a `±HH:MM` offset, any fraction of a second, truncated to ms).
    pub fn parse_rfc3339(input: &str) -> Option<Self> {
        let text = input.trim();
        let (local, offset_seconds) = split_offset(text)?;
        // humantime's weak parser takes the date-time part without a zone; the offset is ours.
        let local = humantime::parse_rfc3339_weak(local).ok()?;
        let utc = if offset_seconds >= 0 {
            local.checked_sub(Duration::from_secs(offset_seconds.unsigned_abs()))?
        } else {
            local.checked_add(Duration::from_secs(offset_seconds.unsigned_abs()))?
        };
        let since_epoch = utc.duration_since(UNIX_EPOCH).ok()?;
        Some(Timestamp(u64::try_from(since_epoch.as_millis()).ok()?))
    }
}

/// A `--from`/`--to` value: an instant, or an age counted back from when the command runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimeArg {
    At(Timestamp),
    Ago(Duration),
}

impl TimeArg {
    pub fn resolve(self, now: Timestamp) -> Timestamp {
        match self {
            TimeArg::At(time) => time,
            TimeArg::Ago(age) => now.saturating_sub(age),
        }
    }
}

impl FromStr for TimeArg {
    type Err = TimeParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if let Some(time) = Timestamp::parse_rfc3339(input) {
            return Ok(TimeArg::At(time));
        }
        humantime::parse_duration(input.trim())
            .map(TimeArg::Ago)
            .map_err(|_| TimeParseError {
                input: input.to_owned(),
            })
    }
}

/// Splits `2026-11-24T18:00:00+01:00` into the local part and the offset in seconds east of UTC.
fn split_offset(text: &str) -> Option<(&str, i64)> {
    if let Some(local) = text.strip_suffix(['Z', 'z']) {
        return Some((local, 0));
    }
    let sign_at = text.len().checked_sub(6)?;
    let (local, zone) = text.split_at_checked(sign_at)?;
    let bytes = zone.as_bytes();
    let sign = match bytes[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    if bytes[3] != b':' || !local.contains('T') && !local.contains(' ') {
        return None;
    }
    let hours: i64 = zone.get(1..3)?.parse().ok()?;
    let minutes: i64 = zone.get(4..6)?.parse().ok()?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some((local, sign * (hours * 3600 + minutes * 60)))
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with milliseconds: `2026-11-24T18:00:00.000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            humantime::format_rfc3339_millis(self.to_system_time())
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_milliseconds() {
        assert_eq!(
            Timestamp::from_millis(1_795_546_073_292).to_string(),
            "2026-11-24T18:47:53.292Z"
        );
    }

    #[test]
    fn parses_zulu_and_offsets_to_the_same_instant() {
        let zulu = Timestamp::parse_rfc3339("2026-11-24T18:00:00Z").unwrap();
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-24T19:30:00+01:30"),
            Some(zulu)
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-24T13:00:00-05:00"),
            Some(zulu)
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-24T18:00:00.123456Z").map(|t| t.as_millis()),
            Some(zulu.as_millis() + 123)
        );
    }

    #[test]
    fn month_bounds_in_utc_including_the_year_end() {
        let at = |text: &str| Timestamp::parse_rfc3339(text).unwrap();
        assert_eq!(
            at("2026-11-25T21:00:00.123Z").month(),
            (at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"))
        );
        assert_eq!(
            at("2026-12-31T23:59:59.999Z").month(),
            (at("2026-12-01T00:00:00Z"), at("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            at("2027-01-01T00:00:00Z").month(),
            (at("2027-01-01T00:00:00Z"), at("2027-02-01T00:00:00Z"))
        );
    }

    #[test]
    fn round_trips_its_own_format() {
        let time = Timestamp::from_millis(1_700_000_000_001);
        assert_eq!(Timestamp::parse_rfc3339(&time.to_string()), Some(time));
    }

    #[test]
    fn an_age_counts_back_from_now() {
        let now = Timestamp::from_millis(10 * 86_400_000);
        let age: TimeArg = "7d".parse().unwrap();
        assert_eq!(age.resolve(now), Timestamp::from_millis(3 * 86_400_000));
    }

    #[test]
    fn rejects_what_is_neither() {
        let err = "yesterday".parse::<TimeArg>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"yesterday\" is neither an RFC 3339 time (2026-11-24T18:00:00Z) nor an age (7d, 24h)"
        );
        assert_eq!(Timestamp::parse_rfc3339("2026-11-24T18:00:00+25:00"), None);
    }
}

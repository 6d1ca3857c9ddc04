//! Points in time as the store keys them: UTC milliseconds since the Unix epoch, bounded to
//! what RFC 3339 can write (four-digit years), with parsing, formatting and calendar arithmetic
//! done by `jiff`; durations given by users, bounded when they are parsed.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::fmt::temporal::{Pieces, PiecesOffset};
use jiff::tz::Offset;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// 9999-12-30T22:00:00.000Z, the last whole millisecond jiff takes ([`jiff::Timestamp::MAX`]
/// is 999,999,999 ns later): the latest instant every UTC offset still writes with a four-digit
/// year.
const MAX_MILLIS: u64 = 253_402_207_200_000;

/// The longest age accepted in `--from`/`--to`, `from=`/`to=`, `--window` and `window=`:
/// 100 years (36500 days), longer than any store can be old.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(36_500 * 24 * 60 * 60);

/// A UTC instant with millisecond precision; its `u64` is the store key, so order is time order.
///
/// It only ever holds times from 1970-01-01T00:00:00.000Z to [`Timestamp::MAX`]
/// (9999-12-30T22:00:00.000Z), so formatting it never fails and arithmetic on it is bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

/// Why a time or a duration given by a user (a flag, a query parameter, an imported line) was
/// refused. The duration messages leave naming the flag or parameter to the caller.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TimeError {
    #[error(
        "{} is neither an RFC 3339 time (2026-11-24T18:00:00Z), a date (2026-11-24, its \
         midnight UTC) nor an age (7d, 24h)", crate::logging::quoted(.input))]
    Unrecognised { input: String },
    #[error(
        "{} is not an RFC 3339 time such as 2026-11-24T18:00:00Z or 2026-11-24T19:00:00+01:00", crate::logging::quoted(.input))]
    NotRfc3339 { input: String },
    #[error(
        "{} names a day that does not exist: {}", crate::logging::quoted(.input), day_rule(.input))]
    NoSuchDay { input: String },
    #[error(
        "{} has a space where its offset's sign belongs: in a URL's query a + reads as a space, \
         so write it %2B (from=2026-11-24T19:00:00%2B01:00), or give the time in UTC with Z",
        crate::logging::quoted(.input)
    )]
    SpaceForPlus { input: String },
    #[error(
        "{} has no time zone: add Z for UTC (2026-11-24T18:00:00Z) or an offset (+01:00)",
        crate::logging::quoted(.input)
    )]
    NoOffset { input: String },
    #[error("{} is before 1970-01-01T00:00:00Z, the earliest time kept", crate::logging::quoted(.input))]
    BeforeEpoch { input: String },
    #[error("{} is after {max}, the latest time kept", crate::logging::quoted(.input), max = Timestamp::MAX)]
    AfterMax { input: String },
    #[error(
        "{} is an age longer than {}, the longest accepted",
        crate::logging::quoted(.input),
        format_limit(MAX_AGE)
    )]
    AgeTooLong { input: String },
    #[error("{reason} (write it like 90s, 2m, 1h 30m or 7d)")]
    DurationSyntax { reason: String },
    #[error("must be longer than zero")]
    DurationZero,
    #[error("must be positive, not negative (write it like 90s, 2m, 1h 30m or 7d)")]
    DurationNegative,
    #[error("must be at most {} (got {})", format_limit(*max), format_limit(*got))]
    DurationTooLong { max: Duration, got: Duration },
    /// Too long to count at all (humantime overflows past about 584 years).
    #[error("must be at most {}", format_limit(*max))]
    DurationHuge { max: Duration },
}

impl Timestamp {
    /// 1970-01-01T00:00:00.000Z, the earliest time kept.
    pub const EPOCH: Timestamp = Timestamp(0);
    /// 9999-12-30T22:00:00.000Z, the latest time kept (jiff's last whole millisecond). It ends
    /// every range and is never a stored sample's time: the store keeps samples before it.
    pub const MAX: Timestamp = Timestamp(MAX_MILLIS);

    /// The time `millis` ms after the epoch; values past [`Timestamp::MAX`] become `MAX`
    /// (use [`Timestamp::try_from_millis`] where such a value must be refused instead).
    pub const fn from_millis(millis: u64) -> Self {
        if millis > MAX_MILLIS {
            Timestamp(MAX_MILLIS)
        } else {
            Timestamp(millis)
        }
    }

    /// The time `millis` ms after the epoch, `None` past [`Timestamp::MAX`] (a store key that
    /// an older version wrote, or a damaged one).
    pub const fn try_from_millis(millis: u64) -> Option<Self> {
        if millis > MAX_MILLIS {
            None
        } else {
            Some(Timestamp(millis))
        }
    }

    /// Milliseconds since the epoch: the store key.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The current time, truncated to milliseconds. A clock before 1970 reads as the epoch,
    /// one past [`Timestamp::MAX`] as `MAX`; [`ClockCheck`] says whether to trust it.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// `time` truncated to milliseconds and clamped to [`Timestamp::EPOCH`]..=[`Timestamp::MAX`].
    pub fn from_system_time(time: SystemTime) -> Self {
        let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        Timestamp::from_millis(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
    }

    /// Seconds since the epoch, with the milliseconds as a fraction.
    pub fn as_seconds_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// `self + duration`, `None` past [`Timestamp::MAX`].
    pub fn checked_add(self, duration: Duration) -> Option<Self> {
        let millis = u64::try_from(duration.as_millis()).ok()?;
        Timestamp::try_from_millis(self.0.checked_add(millis)?)
    }

    /// `self - duration`, `None` before the epoch.
    pub fn checked_sub(self, duration: Duration) -> Option<Self> {
        let millis = u64::try_from(duration.as_millis()).ok()?;
        self.0.checked_sub(millis).map(Timestamp)
    }

    /// `self + duration`, at most [`Timestamp::MAX`].
    pub fn saturating_add(self, duration: Duration) -> Self {
        self.checked_add(duration).unwrap_or(Timestamp::MAX)
    }

    /// `self - duration`, at least the epoch.
    pub fn saturating_sub(self, duration: Duration) -> Self {
        self.checked_sub(duration).unwrap_or(Timestamp::EPOCH)
    }

    /// How long after `earlier` this is; zero when it is not after it.
    pub fn duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// The same instant in jiff's type (always in its range).
    pub(crate) fn to_jiff(self) -> jiff::Timestamp {
        // MAX_MILLIS is below i64::MAX and inside jiff's range, so neither step can fail.
        i64::try_from(self.0)
            .ok()
            .and_then(|millis| jiff::Timestamp::from_millisecond(millis).ok())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    /// Our instant from jiff's, `None` before the epoch.
    pub(crate) fn from_jiff(time: jiff::Timestamp) -> Option<Self> {
        u64::try_from(time.as_millisecond())
            .ok()
            .and_then(Timestamp::try_from_millis)
    }

    /// The first instant of this time's calendar month in UTC, and of the next month (at most
    /// [`Timestamp::MAX`]).
    pub fn month(self) -> (Timestamp, Timestamp) {
        let date = Offset::UTC.to_datetime(self.to_jiff()).date();
        let at_midnight = |date: jiff::civil::Date| {
            Offset::UTC
                .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
                .ok()
                .and_then(Timestamp::from_jiff)
        };
        let first = at_midnight(date.first_of_month()).unwrap_or(self);
        let next = date
            .last_of_month()
            .tomorrow()
            .ok()
            .and_then(at_midnight)
            .unwrap_or(Timestamp::MAX);
        (first, next)
    }

    /// Parses an RFC 3339 time (`Z` or a `±HH:MM` offset, any fraction of a second, truncated
    /// to ms), refusing one outside [`Timestamp::EPOCH`]..=[`Timestamp::MAX`] with a reason.
    pub fn parse(input: &str) -> Result<Self, TimeError> {
        let text = input.trim();
        let not_rfc3339 = || TimeError::NotRfc3339 {
            input: input.to_owned(),
        };
        let pieces = Pieces::parse(text).map_err(|_| not_rfc3339())?;
        let time = pieces.time().ok_or_else(not_rfc3339)?;
        if pieces.time_zone_annotation().is_some() {
            return Err(not_rfc3339());
        }
        let offset = match pieces.offset().ok_or_else(not_rfc3339)? {
            PiecesOffset::Zulu => Offset::UTC,
            PiecesOffset::Numeric(numeric) => numeric.offset(),
            _ => return Err(not_rfc3339()),
        };
        // RFC 3339 offsets are -23:59 to +23:59 in whole minutes; jiff takes up to ±25:59:59.
        if offset.seconds().unsigned_abs() >= 24 * 60 * 60 || offset.seconds() % 60 != 0 {
            return Err(not_rfc3339());
        }
        let civil = pieces.date().to_datetime(time);
        let out_of_range = || {
            if civil.year() > 1970 {
                TimeError::AfterMax {
                    input: input.to_owned(),
                }
            } else {
                TimeError::BeforeEpoch {
                    input: input.to_owned(),
                }
            }
        };
        let instant = offset.to_timestamp(civil).map_err(|_| out_of_range())?;
        Timestamp::from_jiff(instant).ok_or_else(out_of_range)
    }

    /// [`Timestamp::parse`], without the reason.
    pub fn parse_rfc3339(input: &str) -> Option<Self> {
        Timestamp::parse(input).ok()
    }
}

impl FromStr for Timestamp {
    type Err = TimeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(input)
    }
}

/// A `--from`/`--to` value: an instant, a date (`2026-11-30`, its midnight UTC, like every
/// time this program writes), or an age (at most [`MAX_AGE`]) counted back from when the
/// command runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimeArg {
    At(Timestamp),
    Ago(Duration),
}

impl TimeArg {
    /// The instant meant, an age counted back from `now` (at least the epoch).
    pub fn resolve(self, now: Timestamp) -> Timestamp {
        match self {
            TimeArg::At(time) => time,
            TimeArg::Ago(age) => now.saturating_sub(age),
        }
    }
}

impl FromStr for TimeArg {
    type Err = TimeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        match Timestamp::parse(input) {
            Ok(time) => return Ok(TimeArg::At(time)),
            Err(TimeError::NotRfc3339 { .. }) => {}
            Err(out_of_range) => return Err(out_of_range),
        }
        let text = input.trim();
        if let Some(midnight) = date_midnight_utc(text) {
            return midnight.map(TimeArg::At);
        }
        // `2026-02-30T00:00:00Z`: a time on a day that does not exist.
        if let Some(date) = text.get(..10)
            && text
                .as_bytes()
                .get(10)
                .is_some_and(|byte| matches!(byte, b'T' | b't' | b' '))
            && shaped_like_date(date)
            && date.parse::<jiff::civil::Date>().is_err()
        {
            return Err(TimeError::NoSuchDay {
                input: input.to_owned(),
            });
        }
        // A time that only lacks its zone, or lost its `+` to a URL's query.
        if text.contains(':') && text.parse::<jiff::civil::DateTime>().is_ok() {
            return Err(TimeError::NoOffset {
                input: input.to_owned(),
            });
        }
        if let Some((time, offset)) = text.rsplit_once(' ')
            && Timestamp::parse(&format!("{time}+{offset}")).is_ok()
        {
            return Err(TimeError::SpaceForPlus {
                input: input.to_owned(),
            });
        }
        match parse_duration(input, true, MAX_AGE) {
            Ok(age) => Ok(TimeArg::Ago(age)),
            Err(TimeError::DurationTooLong { .. } | TimeError::DurationHuge { .. }) => {
                Err(TimeError::AgeTooLong {
                    input: input.to_owned(),
                })
            }
            Err(_) => Err(TimeError::Unrecognised {
                input: input.to_owned(),
            }),
        }
    }
}

/// The midnight UTC starting `text` when it is a date written `YYYY-MM-DD`; `None` when it is
/// not written so, an error when no such day exists or it is outside the times kept.
fn date_midnight_utc(text: &str) -> Option<Result<Timestamp, TimeError>> {
    if !shaped_like_date(text) {
        return None;
    }
    let Ok(date) = text.parse::<jiff::civil::Date>() else {
        return Some(Err(TimeError::NoSuchDay {
            input: text.to_owned(),
        }));
    };
    let midnight = Offset::UTC
        .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
        .ok()
        .and_then(Timestamp::from_jiff);
    Some(midnight.ok_or_else(|| {
        let input = text.to_owned();
        if date.year() >= 1970 {
            TimeError::AfterMax { input }
        } else {
            TimeError::BeforeEpoch { input }
        }
    }))
}

/// Why the day `input` starts with (`YYYY-MM-DD`, as [`TimeError::NoSuchDay`] found it) does
/// not exist: the month is not 01 to 12, or the month has fewer days (`April 2026 has 30
/// days`).
fn day_rule(input: &str) -> String {
    let number = |range: std::ops::Range<usize>| input.get(range)?.parse::<i16>().ok();
    let (Some(year), Some(month)) = (number(0..4), number(5..7)) else {
        return "write it YYYY-MM-DD".to_owned();
    };
    let Some(first) = i8::try_from(month)
        .ok()
        .and_then(|month| jiff::civil::Date::new(year, month, 1).ok())
    else {
        return "months are 01 to 12".to_owned();
    };
    format!(
        "{} {year} has {} days",
        first.strftime("%B"),
        first.days_in_month()
    )
}

/// Whether `text` is written `YYYY-MM-DD` (ten ASCII digits and dashes), real day or not.
fn shaped_like_date(text: &str) -> bool {
    text.len() == 10
        && text.bytes().enumerate().all(|(at, byte)| {
            matches!(at, 4 | 7) == (byte == b'-') && (byte == b'-' || byte.is_ascii_digit())
        })
}

/// A humantime duration (`90s`, `2m`, `1h 30m`, `7d`) of at most `max`, and longer than zero
/// unless `zero_allowed`.
pub(crate) fn parse_duration(
    text: &str,
    zero_allowed: bool,
    max: Duration,
) -> Result<Duration, TimeError> {
    let text = text.trim();
    let duration = humantime::parse_duration(text).map_err(|err| {
        if text
            .strip_prefix('-')
            .is_some_and(|rest| humantime::parse_duration(rest).is_ok())
        {
            TimeError::DurationNegative
        } else if matches!(err, humantime::DurationError::NumberOverflow) {
            TimeError::DurationHuge { max }
        } else {
            TimeError::DurationSyntax {
                reason: err.to_string(),
            }
        }
    })?;
    if duration.is_zero() && !zero_allowed {
        return Err(TimeError::DurationZero);
    }
    if duration > max {
        return Err(TimeError::DurationTooLong { max, got: duration });
    }
    Ok(duration)
}

/// An age such as a summary window: longer than zero, at most [`MAX_AGE`].
pub fn parse_age(text: &str) -> Result<Duration, TimeError> {
    parse_duration(text, false, MAX_AGE)
}

/// A limit as a person writes it: whole days (`7d`), humantime's months or years as given
/// (`3months`, `1year`: a `3M` retention is not 7890048 seconds), whole hours, minutes or
/// seconds under an hour (`1h`, `90s`), humantime's form otherwise (`23h 59m 59s`).
pub(crate) fn format_limit(duration: Duration) -> String {
    let secs = duration.as_secs();
    let human = humantime::format_duration(duration).to_string();
    if duration.subsec_nanos() != 0 || secs == 0 {
        return human;
    }
    if secs.is_multiple_of(86_400) {
        return format!("{}d", secs / 86_400);
    }
    if !human.contains(' ') {
        return human;
    }
    for (unit, size) in [("h", 3_600), ("m", 60)] {
        if secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    if secs < 3_600 {
        return format!("{secs}s");
    }
    human
}

/// When this program's source was last changed (the commit date, or `SOURCE_DATE_EPOCH`, set by
/// `build.rs`; the release date when neither was known): a clock that reads earlier is wrong.
pub(crate) fn source_date() -> Timestamp {
    /// The date of the release this constant was last updated for; `build.rs` usually knows
    /// a later one. Update it with each release.
    const RELEASED: u64 = 1_795_996_800; // 2026-11-30T00:00:00Z
    let seconds = option_env!("INTERNET_MONITOR_SOURCE_DATE")
        .and_then(|text| text.parse::<u64>().ok())
        .map_or(RELEASED, |date| date.max(RELEASED));
    Timestamp::from_millis(seconds.saturating_mul(1000))
}

/// What the clock looks like against what is known to be true.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClockCheck {
    /// Nothing suggests the clock is wrong.
    Plausible,
    /// The clock reads earlier than this program's source date ([`source_date`]).
    BeforeSourceDate {
        now: Timestamp,
        source_date: Timestamp,
    },
}

/// How far before the source date the clock may read and still be believed: a commit made on
/// a machine whose clock ran ahead should not make a right clock look wrong.
pub(crate) const SOURCE_DATE_SLACK: Duration = Duration::from_secs(24 * 60 * 60);

impl ClockCheck {
    /// Judges `now` against the source date (less [`SOURCE_DATE_SLACK`]).
    pub(crate) fn of(now: Timestamp) -> Self {
        let source_date = source_date();
        if now.saturating_add(SOURCE_DATE_SLACK) < source_date {
            ClockCheck::BeforeSourceDate { now, source_date }
        } else {
            ClockCheck::Plausible
        }
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with milliseconds: `2026-11-24T18:00:00.000Z`. Never fails: every value
    /// is in jiff's range.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}", self.to_jiff())
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
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;

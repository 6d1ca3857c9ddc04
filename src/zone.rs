//! Time zones by IANA name (`Europe/Berlin`), for the calendar days and local hours that rule
//! sets, peak windows and the heat map count in; instants stay UTC everywhere else.

use std::fmt;

use jiff::tz::TimeZone;

use crate::time::Timestamp;

/// The longest zone name accepted; the longest in the tz database is 32 bytes.
pub const MAX_ZONE_NAME: usize = 64;

/// Why a zone name was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ZoneError {
    #[error("{0:?} is not an IANA time zone such as Europe/Berlin or UTC")]
    Unknown(String),
}

/// An IANA time zone and the name it was asked for by.
#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    zone: TimeZone,
    name: String,
}

impl Zone {
    /// UTC.
    pub fn utc() -> Self {
        Zone {
            zone: TimeZone::UTC,
            name: "UTC".to_owned(),
        }
    }

    /// The zone named `name` (`Europe/Berlin`, `UTC`): from the system's database first (kept
    /// current by the OS), then from the one built in, which also knows the legacy names
    /// browsers send (`Asia/Calcutta`) that a trimmed tzdata lacks. Refuses, without touching
    /// the file system, anything that is not plausibly a zone name (paths, `..`, offsets).
    pub fn parse(name: &str) -> Result<Self, ZoneError> {
        let unknown = || ZoneError::Unknown(crate::logging::clip(name, MAX_ZONE_NAME).to_owned());
        let plausible = !name.is_empty()
            && name.len() <= MAX_ZONE_NAME
            && !name.contains("..")
            && !name.starts_with('/')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+'));
        if !plausible {
            return Err(unknown());
        }
        let zone = jiff::tz::db()
            .get(name)
            .or_else(|_| jiff::tz::TimeZoneDatabase::bundled().get(name))
            .map_err(|_| unknown())?;
        Ok(Zone {
            zone,
            name: name.to_owned(),
        })
    }

    /// The system's zone (`TZ`, else `/etc/localtime`) when it has an IANA name; UTC otherwise
    /// (a container without zone data, a `TZ` such as `CET-1`).
    pub fn system() -> Self {
        let system = TimeZone::system();
        system
            .iana_name()
            .and_then(|name| Zone::parse(name).ok())
            .unwrap_or_else(Zone::utc)
    }

    /// The IANA name, as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone itself, for jiff's calendar arithmetic.
    pub fn time_zone(&self) -> &TimeZone {
        &self.zone
    }

    /// The local date and time of `time` in this zone.
    pub fn local(&self, time: Timestamp) -> jiff::civil::DateTime {
        // Every Timestamp is within jiff's range (see `Timestamp::MAX`), so the fallback to
        // the epoch is never taken.
        let instant = i64::try_from(time.as_millis())
            .ok()
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        self.zone.to_datetime(instant)
    }

    /// The local calendar date of `time` in this zone.
    pub fn local_date(&self, time: Timestamp) -> jiff::civil::Date {
        self.local(time).date()
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_looked_up_and_nonsense_refused() {
        assert_eq!(
            Zone::parse("Europe/Berlin").unwrap().name(),
            "Europe/Berlin"
        );
        assert_eq!(Zone::parse("UTC").unwrap().name(), "UTC");
        for bad in [
            "",
            "Mars/Olympus",
            "../../etc/passwd",
            "/etc/localtime",
            "+01:00",
        ] {
            assert_eq!(
                Zone::parse(bad),
                Err(ZoneError::Unknown(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn local_dates_follow_the_zone() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        // 2026-10-24T22:30:00Z is 00:30 on the 25th in Berlin (CEST, +02:00).
        let time: Timestamp = "2026-10-24T22:30:00Z".parse().unwrap();
        assert_eq!(berlin.local_date(time).to_string(), "2026-10-25");
        assert_eq!(Zone::utc().local_date(time).to_string(), "2026-10-24");
    }
}

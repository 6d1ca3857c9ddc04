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
    #[error("{} is not an IANA time zone such as Europe/Berlin or UTC", crate::logging::quoted(.0))]
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
        let unknown = || ZoneError::Unknown(name.to_owned());
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
        system_name(
            std::env::var_os("TZ"),
            std::path::Path::new("/etc/localtime"),
        )
        .and_then(|name| Zone::parse(&name).ok())
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
        self.zone.to_datetime(time.to_jiff())
    }

    /// The local calendar date of `time` in this zone.
    pub fn local_date(&self, time: Timestamp) -> jiff::civil::Date {
        self.local(time).date()
    }
}

/// The IANA name the system's zone goes by: `tz` (the `TZ` variable) when set, a name
/// (`Europe/Berlin`) or a path into a zoneinfo directory (`/usr/share/zoneinfo/Europe/Berlin`),
/// either after POSIX's optional `:`; else the target of the symbolic link `localtime`. No file
/// is read: a path names its zone by where it lies, so a `TZ` naming `/dev/zero` or a FIFO
/// cannot hold up or fill memory. `None` when neither names one ([`Zone::parse`] then decides).
fn system_name(tz: Option<std::ffi::OsString>, localtime: &std::path::Path) -> Option<String> {
    fn in_zoneinfo(path: &str) -> Option<String> {
        path.rsplit_once("zoneinfo/")
            .map(|(_, name)| name.to_owned())
    }
    match tz {
        Some(tz) if !tz.is_empty() => {
            let tz = tz.to_str()?;
            let tz = tz.strip_prefix(':').unwrap_or(tz);
            if tz.starts_with('/') {
                in_zoneinfo(tz)
            } else {
                Some(tz.to_owned())
            }
        }
        _ => in_zoneinfo(std::fs::read_link(localtime).ok()?.to_str()?),
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
    fn the_system_zone_is_named_by_tz_else_by_the_localtime_link() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("localtime");
        std::os::unix::fs::symlink("../usr/share/zoneinfo/Europe/Berlin", &link).unwrap();
        let name = |tz: Option<&str>| system_name(tz.map(Into::into), &link);
        assert_eq!(name(None).as_deref(), Some("Europe/Berlin"));
        assert_eq!(name(Some("")).as_deref(), Some("Europe/Berlin"));
        assert_eq!(name(Some("Asia/Tokyo")).as_deref(), Some("Asia/Tokyo"));
        assert_eq!(name(Some(":Asia/Tokyo")).as_deref(), Some("Asia/Tokyo"));
        assert_eq!(
            name(Some(":/usr/share/zoneinfo/America/New_York")).as_deref(),
            Some("America/New_York")
        );
        // A path outside a zoneinfo directory names no zone, and is never read.
        assert_eq!(name(Some("/dev/zero")), None);
        assert_eq!(name(Some(":/etc/passwd")), None);
        assert_eq!(system_name(None, &dir.path().join("missing")), None);
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

//! Time zones by IANA name (`Europe/Berlin`), for the calendar days and local hours that rule
//! sets, peak windows and the heat map count in; instants stay UTC everywhere else.

use std::fmt;

use jiff::tz::TimeZone;

use crate::time::Timestamp;

/// The longest zone name accepted; the longest in the tz database is 32 bytes.
pub(crate) const MAX_ZONE_NAME: usize = 64;

/// The most of a zone file that is read: the tz database's are under 5 KB. A larger file, or
/// anything that is not a regular file (a FIFO, a device, `/dev/zero` by a link), is no zone.
const MAX_ZONE_FILE_BYTES: u64 = 256 * 1024;

/// The directories the system's zone files are looked up in when `TZDIR` names none, as jiff
/// looks.
const ZONEINFO_DIRECTORIES: [&str; 3] = [
    "/usr/share/zoneinfo",
    "/usr/share/lib/zoneinfo",
    "/etc/zoneinfo",
];

/// Why a zone name was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ZoneError {
    #[error("{} is not an IANA time zone such as Europe/Berlin or UTC", crate::logging::quoted(.0))]
    Unknown(String),
    #[error(
        "{}: {path} is not a zone file (a FIFO, a device, a directory, or larger than 256 KiB): \
         the zoneinfo directory (TZDIR, else /usr/share/zoneinfo) holds something else under \
         that name", crate::logging::quoted(.name)
    )]
    NotAZoneFile { name: String, path: String },
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
        let zone = match system_zone_file(name)? {
            Some(zone) => zone,
            None => jiff::tz::TimeZoneDatabase::bundled()
                .get(name)
                .map_err(|_| unknown())?,
        };
        Ok(Zone {
            zone,
            name: name.to_owned(),
        })
    }

    /// The system's zone (`TZ`, else `/etc/localtime`) when it has an IANA name; UTC otherwise
    /// (a container without zone data, a `TZ` such as `CET-1`). [`Zone::system_checked`] says
    /// why it is UTC.
    pub fn system() -> Self {
        Zone::system_checked().unwrap_or_else(|_| Zone::utc())
    }

    /// The system's zone: `TZ` when set, else the zone `/etc/localtime` links to, else UTC
    /// (no zone configured). `Err` says why the zone configured cannot be used (UTC would be
    /// used in its place): a `TZ` that names no IANA zone (a typo, a POSIX rule such as
    /// `CET-1CEST,M3.5.0,M10.5.0/3`, a path outside a zoneinfo directory), or an
    /// `/etc/localtime` that is not a link into one. Callers warn, or refuse where the zone
    /// decides what is stored (`import --from-original`).
    pub fn system_checked() -> Result<Self, String> {
        system_zone(
            std::env::var_os("TZ"),
            std::path::Path::new("/etc/localtime"),
        )
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

/// The zone `name` (a plausible IANA name, [`Zone::parse`]) from the system's zoneinfo
/// directory (`TZDIR`, else the first of [`ZONEINFO_DIRECTORIES`] that exists): `None` when
/// there is no such file (the bundled database then decides). Only a regular file of at most
/// [`MAX_ZONE_FILE_BYTES`] is read, opened without blocking, so a FIFO or device put there
/// cannot hold up a request, nor `/dev/zero` fill memory.
fn system_zone_file(name: &str) -> Result<Option<TimeZone>, ZoneError> {
    let tzdir = std::env::var_os("TZDIR").filter(|dir| !dir.is_empty());
    let mut dirs = tzdir
        .into_iter()
        .map(std::path::PathBuf::from)
        .chain(ZONEINFO_DIRECTORIES.iter().map(std::path::PathBuf::from));
    match dirs.find(|dir| dir.is_dir()) {
        Some(dir) => zone_file_in(&dir, name),
        None => Ok(None),
    }
}

/// [`system_zone_file`] in the zoneinfo directory `dir`.
fn zone_file_in(dir: &std::path::Path, name: &str) -> Result<Option<TimeZone>, ZoneError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let not_a_zone_file = || ZoneError::NotAZoneFile {
        name: name.to_owned(),
        path: path.display().to_string(),
    };
    let Ok(meta) = std::fs::metadata(&path) else {
        return Ok(None);
    };
    if !meta.is_file() || meta.len() > MAX_ZONE_FILE_BYTES {
        return Err(not_a_zone_file());
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
    else {
        return Ok(None);
    };
    // What was opened, not what was looked at: a file swapped for a FIFO in between is refused.
    if !file.metadata().is_ok_and(|meta| meta.is_file()) {
        return Err(not_a_zone_file());
    }
    let mut data = Vec::new();
    let read = file.take(MAX_ZONE_FILE_BYTES + 1).read_to_end(&mut data);
    if read.is_err() || data.len() as u64 > MAX_ZONE_FILE_BYTES {
        return Err(not_a_zone_file());
    }
    TimeZone::tzif(name, &data)
        .map(Some)
        .map_err(|_| ZoneError::Unknown(name.to_owned()))
}

/// The zone `tz` (the `TZ` variable) names when set and not empty, else the one `localtime`
/// links to, else UTC when `localtime` does not exist. `TZ` is a name (`Europe/Berlin`) or a
/// path into a zoneinfo directory (`/usr/share/zoneinfo/Europe/Berlin`), either after POSIX's
/// optional `:`. No file is read: a path names its zone by where it lies, so a `TZ` naming
/// `/dev/zero` or a FIFO cannot hold up or fill memory. `Err` says why a zone configured
/// names no IANA zone.
fn system_zone(
    tz: Option<std::ffi::OsString>,
    localtime: &std::path::Path,
) -> Result<Zone, String> {
    fn in_zoneinfo(path: &str) -> Option<&str> {
        path.rsplit_once("zoneinfo/").map(|(_, name)| name)
    }
    let shown = |text: &str| format!("{:?}", crate::logging::clip(text, MAX_ZONE_NAME));
    match tz {
        Some(tz) if !tz.is_empty() => {
            let tz = tz.to_string_lossy();
            let bare = tz.strip_prefix(':').unwrap_or(&tz);
            let name = if bare.starts_with('/') {
                in_zoneinfo(bare)
            } else {
                Some(bare)
            };
            name.and_then(|name| Zone::parse(name).ok()).ok_or_else(|| {
                format!(
                    "TZ={} names no IANA time zone (a name such as Europe/Berlin, or a path into \
                     a zoneinfo directory; a POSIX rule such as CET-1CEST is not read)",
                    shown(&tz)
                )
            })
        }
        _ => match std::fs::read_link(localtime) {
            Ok(target) => {
                let target = target.to_string_lossy();
                in_zoneinfo(&target)
                    .and_then(|name| Zone::parse(name).ok())
                    .ok_or_else(|| {
                        format!(
                            "{} links to {}, which names no IANA time zone",
                            localtime.display(),
                            shown(&target)
                        )
                    })
            }
            Err(_) if !localtime.exists() => Ok(Zone::utc()),
            Err(_) => Err(format!(
                "{} is not a link into a zoneinfo directory, so its zone has no name here",
                localtime.display()
            )),
        },
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
        let name = |tz: Option<&str>| {
            system_zone(tz.map(Into::into), &link).map(|zone| zone.name().to_owned())
        };
        assert_eq!(name(None).as_deref(), Ok("Europe/Berlin"));
        assert_eq!(name(Some("")).as_deref(), Ok("Europe/Berlin"));
        assert_eq!(name(Some("Asia/Tokyo")).as_deref(), Ok("Asia/Tokyo"));
        assert_eq!(name(Some(":Asia/Tokyo")).as_deref(), Ok("Asia/Tokyo"));
        assert_eq!(
            name(Some(":/usr/share/zoneinfo/America/New_York")).as_deref(),
            Ok("America/New_York")
        );
        // No zone configured at all is UTC, without a word.
        let missing = dir.path().join("missing");
        assert_eq!(
            system_zone(None, &missing).map(|z| z.name().to_owned()),
            Ok("UTC".into())
        );
    }

    /// A zone configured that names no IANA zone is said, not taken for UTC in silence: a typo,
    /// a POSIX rule, a path outside zoneinfo (never read), a localtime file that is no link.
    #[test]
    fn a_system_zone_that_names_no_zone_is_said() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("localtime");
        std::os::unix::fs::symlink("../usr/share/zoneinfo/Europe/Berlin", &link).unwrap();
        for tz in [
            "Europe/Berlim",
            "CET-1CEST,M3.5.0,M10.5.0/3",
            "/dev/zero",
            ":/etc/passwd",
        ] {
            let err = system_zone(Some(tz.into()), &link).unwrap_err();
            assert!(
                err.starts_with(&format!("TZ={tz:?} names no IANA time zone")),
                "{err}"
            );
        }
        let copy = dir.path().join("copied");
        std::fs::write(&copy, b"TZif").unwrap();
        assert_eq!(
            system_zone(None, &copy).unwrap_err(),
            format!(
                "{} is not a link into a zoneinfo directory, so its zone has no name here",
                copy.display()
            )
        );
        let elsewhere = dir.path().join("elsewhere");
        std::os::unix::fs::symlink("/tmp/Nowhere", &elsewhere).unwrap();
        assert!(
            system_zone(None, &elsewhere)
                .unwrap_err()
                .contains("names no IANA time zone")
        );
        // A control character in TZ is shown escaped.
        let err = system_zone(Some("Europe/\nBerlin".into()), &link).unwrap_err();
        assert!(!err.contains('\n'), "{err}");
    }

    /// A FIFO, a device or a huge file under a zone's name in the zoneinfo directory (TZDIR)
    /// is refused at once, never opened to wait or read whole; a real zone file is read.
    #[test]
    fn only_a_small_regular_file_is_read_as_a_zone() {
        let dir = tempfile::tempdir().unwrap();
        let europe = dir.path().join("Europe");
        std::fs::create_dir(&europe).unwrap();
        let fifo = std::ffi::CString::new(europe.join("Fifo").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path we own.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink("/dev/zero", europe.join("Zero")).unwrap();
        std::fs::write(europe.join("Huge"), vec![0u8; 300 * 1024]).unwrap();
        for name in ["Europe/Fifo", "Europe/Zero", "Europe/Huge", "Europe"] {
            let err = zone_file_in(dir.path(), name).unwrap_err();
            assert!(
                matches!(err, ZoneError::NotAZoneFile { .. }),
                "{name}: {err}"
            );
            assert!(err.to_string().contains("is not a zone file"), "{err}");
        }
        assert_eq!(zone_file_in(dir.path(), "Europe/Missing").unwrap(), None);
        std::fs::write(europe.join("Junk"), b"not a zone").unwrap();
        assert!(matches!(
            zone_file_in(dir.path(), "Europe/Junk"),
            Err(ZoneError::Unknown(_))
        ));
        // A real zone file, where the system has one.
        let berlin = std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin");
        if berlin.is_file() {
            std::fs::copy(berlin, europe.join("Berlin")).unwrap();
            let zone = zone_file_in(dir.path(), "Europe/Berlin").unwrap().unwrap();
            let time: Timestamp = "2026-07-01T00:00:00Z".parse().unwrap();
            assert_eq!(zone.to_datetime(time.to_jiff()).hour(), 2);
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

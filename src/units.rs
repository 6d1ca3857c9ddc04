//! Quantities as people write them: bandwidths (`500Mbit/s`, `1Gbps`, `62.5MB/s`), held in
//! bytes per second, and data volumes (`200GB`, `1.5TiB`), held in bytes.

use std::fmt;
use std::str::FromStr;

/// A rate in bytes per second, the unit Ookla reports and Prometheus wants.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Bandwidth(f64);

#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "{input:?} is not a bandwidth: write a positive number and a unit, such as 500Mbit/s, 1Gbps or 62.5MB/s"
)]
pub struct BandwidthParseError {
    input: String,
}

/// Each unit with its size in bytes per second. Lower-case `b` is bits, upper-case `B` bytes.
const BANDWIDTH_UNITS: [(&str, f64); 17] = [
    ("bit/s", 1.0 / 8.0),
    ("kbit/s", 1e3 / 8.0),
    ("Mbit/s", 1e6 / 8.0),
    ("Gbit/s", 1e9 / 8.0),
    ("Tbit/s", 1e12 / 8.0),
    ("bps", 1.0 / 8.0),
    ("kbps", 1e3 / 8.0),
    ("Kbps", 1e3 / 8.0),
    ("Mbps", 1e6 / 8.0),
    ("Gbps", 1e9 / 8.0),
    ("Tbps", 1e12 / 8.0),
    ("B/s", 1.0),
    ("kB/s", 1e3),
    ("KB/s", 1e3),
    ("MB/s", 1e6),
    ("GB/s", 1e9),
    ("TB/s", 1e12),
];

impl Bandwidth {
    pub fn from_bytes_per_second(value: f64) -> Self {
        Bandwidth(value)
    }

    pub fn bytes_per_second(self) -> f64 {
        self.0
    }
}

impl FromStr for Bandwidth {
    type Err = BandwidthParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        quantity(input, &BANDWIDTH_UNITS)
            .map(Bandwidth)
            .ok_or_else(|| BandwidthParseError {
                input: input.to_owned(),
            })
    }
}

/// A positive number followed by one of `units`, in the units' base; `None` otherwise.
fn quantity(input: &str, units: &[(&str, f64)]) -> Option<f64> {
    let text = input.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let (_, size) = units.iter().find(|(name, _)| *name == unit.trim())?;
    let value = number * size;
    (value > 0.0 && value.is_finite()).then_some(value)
}

/// An amount of data in bytes, such as a monthly data budget.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct DataVolume(f64);

#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "{input:?} is not a data volume: write a positive number and a unit, such as 200GB, 1.5TB or 500GiB"
)]
pub struct DataVolumeParseError {
    input: String,
}

/// Decimal units as ISPs bill them, and binary ones for those who prefer them.
const VOLUME_UNITS: [(&str, f64); 11] = [
    ("B", 1.0),
    ("kB", 1e3),
    ("KB", 1e3),
    ("MB", 1e6),
    ("GB", 1e9),
    ("TB", 1e12),
    ("KiB", 1024.0),
    ("MiB", 1048576.0),
    ("GiB", 1073741824.0),
    ("TiB", 1099511627776.0),
    ("PB", 1e15),
];

impl DataVolume {
    pub fn bytes(self) -> f64 {
        self.0
    }
}

impl FromStr for DataVolume {
    type Err = DataVolumeParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        quantity(input, &VOLUME_UNITS)
            .map(DataVolume)
            .ok_or_else(|| DataVolumeParseError {
                input: input.to_owned(),
            })
    }
}

impl fmt::Display for DataVolume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} GB", self.0 / 1e9)
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Mbit/s", crate::sample::mbit_per_second(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> f64 {
        text.parse::<Bandwidth>().unwrap().bytes_per_second()
    }

    #[test]
    fn bits_and_bytes_in_every_spelling() {
        assert_eq!(parse("500Mbit/s"), 62.5e6);
        assert_eq!(parse("1Gbps"), 125e6);
        assert_eq!(parse("62.5MB/s"), 62.5e6);
        assert_eq!(parse("100Gbit/s"), 12.5e9);
        assert_eq!(parse("800 kbit/s"), 100e3);
    }

    #[test]
    fn data_volumes_decimal_and_binary() {
        let bytes = |text: &str| text.parse::<DataVolume>().unwrap().bytes();
        assert_eq!(bytes("200GB"), 200e9);
        assert_eq!(bytes("1.5TB"), 1.5e12);
        assert_eq!(bytes("2GiB"), 2.0 * 1073741824.0);
        let err = "200Gb".parse::<DataVolume>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"200Gb\" is not a data volume: write a positive number and a unit, such as 200GB, 1.5TB or 500GiB"
        );
    }

    #[test]
    fn a_number_needs_a_known_unit_and_must_be_positive() {
        for bad in ["500", "500 Mb", "fast", "0Mbit/s", "-5Mbit/s", "1..2Gbps"] {
            let err = bad.parse::<Bandwidth>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "{bad:?} is not a bandwidth: write a positive number and a unit, such as 500Mbit/s, 1Gbps or 62.5MB/s"
                )
            );
        }
    }
}

/// Figures for people, in logs, messages and `run-once --format text`: speeds in Mbit/s,
/// latencies in ms, volumes in decimal MB or GB, each rounded so that it reads at a glance
/// (the stored samples and the API keep their full precision and base units).
///
/// Rounding ([`people`]): three significant digits, but whole numbers from 100 up (1234
/// stays 1234) and at least one decimal below 100 (50.04 → 50.0, 93.42 → 93.4, 5.123 → 5.12,
/// 0.5234 → 0.523). Milliseconds keep one decimal ([`ms`]).
pub mod for_people {
    /// `value` rounded for a person: three significant digits, whole numbers from 100 up, at
    /// least one decimal below 100. Not finite stays as it is.
    pub fn people(value: f64) -> f64 {
        if !value.is_finite() || value == 0.0 {
            return value;
        }
        let magnitude = value.abs();
        if magnitude >= 100.0 {
            return value.round();
        }
        // Digits before the point, less one: 1 for 10..100, 0 for 1..10, -1 for 0.1..1.
        let exponent = magnitude.log10().floor() as i32;
        let decimals = (2 - exponent).clamp(1, 9);
        let scale = 10f64.powi(decimals);
        (value * scale).round() / scale
    }

    /// A rate in bytes per second as Mbit/s, rounded for a person (`download_mbit_s`).
    pub fn mbit_s(bytes_per_second: f64) -> f64 {
        people(bytes_per_second * 8.0 / 1e6)
    }

    /// A time in seconds as milliseconds with one decimal (`ping_ms`, `jitter_ms`).
    pub fn ms(seconds: f64) -> f64 {
        if !seconds.is_finite() {
            return seconds;
        }
        (seconds * 1e4).round() / 10.0
    }

    /// A volume in bytes as decimal megabytes, rounded for a person (`data_used_mb`).
    pub fn mb(bytes: f64) -> f64 {
        people(bytes / 1e6)
    }

    /// A volume in bytes in words, in the decimal unit that keeps it short: `3.17 GB`,
    /// `512 MB`, `12.0 kB`, `800 B`.
    pub fn volume(bytes: f64) -> String {
        let magnitude = bytes.abs();
        let (scale, unit) = if magnitude >= 1e12 {
            (1e12, "TB")
        } else if magnitude >= 1e9 {
            (1e9, "GB")
        } else if magnitude >= 1e6 {
            (1e6, "MB")
        } else if magnitude >= 1e3 {
            (1e3, "kB")
        } else {
            return format!("{} B", bytes.round());
        };
        format!("{} {unit}", people_text(bytes / scale))
    }

    /// [`people`] as text, with its decimal shown below 100 (`12.0`, not `12`).
    pub fn people_text(value: f64) -> String {
        let rounded = people(value);
        let text = rounded.to_string();
        if rounded.is_finite() && rounded.abs() < 100.0 && !text.contains('.') {
            format!("{text}.0")
        } else {
            text
        }
    }

    /// A rate in bytes per second in words: `93.4 Mbit/s`.
    pub fn speed(bytes_per_second: f64) -> String {
        format!("{} Mbit/s", people_text(bytes_per_second * 8.0 / 1e6))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn three_significant_digits_whole_from_100_one_decimal_below() {
            assert_eq!(people(93.42), 93.4);
            assert_eq!(people(50.04), 50.0);
            assert_eq!(people(512.4), 512.0);
            assert_eq!(people(1234.5), 1235.0);
            assert_eq!(people(5.1234), 5.12);
            assert_eq!(people(0.52), 0.52);
            assert_eq!(people(0.5234), 0.523);
            assert_eq!(people(0.0), 0.0);
            assert_eq!(people(99.96), 100.0);
            assert_eq!(people(-3.456), -3.46);
            // As a log shows them: no binary noise.
            assert_eq!(people(93.42).to_string(), "93.4");
            assert_eq!(people(0.12345).to_string(), "0.123");
        }

        #[test]
        fn speeds_latencies_and_volumes_in_their_units() {
            // 92,727,670 B/s is 741.82 Mbit/s.
            assert_eq!(mbit_s(92_727_670.0), 742.0);
            assert_eq!(mbit_s(1_167_500.0), 9.34);
            assert_eq!(ms(0.012345), 12.3);
            assert_eq!(ms(0.00004), 0.0);
            assert_eq!(mb(3_173_277_248.0), 3173.0);
            assert_eq!(mb(520_000.0), 0.52);
            assert_eq!(speed(11_678_000.0), "93.4 Mbit/s");
        }

        #[test]
        fn a_volume_in_words_takes_the_unit_that_keeps_it_short() {
            assert_eq!(volume(3_173_277_248.0), "3.17 GB");
            assert_eq!(volume(150e9), "150 GB");
            assert_eq!(volume(512e6), "512 MB");
            assert_eq!(volume(12_000.0), "12.0 kB");
            assert_eq!(volume(800.0), "800 B");
            assert_eq!(volume(2.5e12), "2.5 TB");
            assert_eq!(speed(1e6), "8.0 Mbit/s");
        }
    }
}

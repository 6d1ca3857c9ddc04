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

//! Bandwidths as people write them (`500Mbit/s`, `1Gbps`, `62.5MB/s`), held in bytes per second.

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
const UNITS: [(&str, f64); 17] = [
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
        let error = || BandwidthParseError {
            input: input.to_owned(),
        };
        let text = input.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(error)?;
        let (number, unit) = text.split_at(split);
        let number: f64 = number.parse().map_err(|_| error())?;
        let (_, size) = UNITS
            .iter()
            .find(|(name, _)| *name == unit.trim())
            .ok_or_else(error)?;
        let value = number * size;
        if value > 0.0 && value.is_finite() {
            Ok(Bandwidth(value))
        } else {
            Err(error())
        }
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

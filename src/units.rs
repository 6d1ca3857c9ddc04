//! Quantities as people write them: bandwidths (`500Mbit/s`, `1Gbps`, `62.5MB/s`), held in
//! bytes per second, and data volumes (`200GB`, `1.5TiB`), held in bytes.

use std::fmt;
use std::str::FromStr;

/// A rate in bytes per second, the unit Ookla reports and Prometheus wants.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Bandwidth(f64);

/// What a speed is written as, for the refusal's hint: the rule and examples.
pub const SPEED_SPELLINGS: &str = "write a number and a unit: a prefix k, M, G or T (either \
     case; Ki, Mi, Gi, Ti binary), then b or bit for bits or B or byte for bytes, then /s or \
     ps: 500Mbit/s, 500Mbps, 500mbps, 1Gb/s (bits) or 62.5MB/s, 62.5MBps, 10MiB/s (bytes)";

/// What a volume is written as, for the refusal's hint.
pub(crate) const VOLUME_SPELLINGS: &str = "write a number and a unit in bytes: a prefix k, M, G, T or P \
     (either case; Ki, Mi, Gi, Ti binary), then B or byte: 200GB, 1.5TB, 500GiB, 200gbyte";

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{} is not a speed: {reason}; {SPEED_SPELLINGS}", crate::logging::quoted(.input))]
pub struct BandwidthParseError {
    input: String,
    reason: &'static str,
}

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

    /// Reads the rule of [`SPEED_SPELLINGS`]: upper- or lower-case `b` is the only bit/byte
    /// marker (`500mbps` is bits, `62.5MBps` bytes), so a unit in capitals throughout
    /// (`500MBPS`) and one without `/s` or `ps` (`500Mb`, `500M`, `500`) are refused.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let refuse = |reason| BandwidthParseError {
            input: input.to_owned(),
            reason,
        };
        let unit = quantity(input).map_err(refuse)?;
        if !unit.per_second {
            return Err(refuse(
                "a speed needs /s or ps after its unit (500Mb alone could be a volume)",
            ));
        }
        if unit.shouted {
            return Err(refuse(
                "in capitals throughout, B could mean bits or bytes (write Mbps for bits, MB/s for bytes)",
            ));
        }
        let value = unit.value / if unit.bits { 8.0 } else { 1.0 };
        // The smallest positive number of bits can round to zero bytes.
        if value <= 0.0 {
            return Err(refuse("it must be above zero"));
        }
        Ok(Bandwidth(value))
    }
}

/// A number and unit read by [`quantity`].
struct Quantity {
    /// The number times the prefix, in bits or bytes (per second when `per_second`).
    value: f64,
    /// The unit was bits (`b`, `bit`, `bits`), else bytes (`B`, `byte`, `bytes`).
    bits: bool,
    /// The unit ended in `/s` or `ps`.
    per_second: bool,
    /// A one-letter `B` followed by `PS` or `/S`: all capitals, so whether bits were meant is
    /// unclear.
    shouted: bool,
}

/// Reads `NUMBER [PREFIX] (b|B|bit|bits|byte|bytes) [/s|ps]`, with optional spaces after the
/// number; the error is the reason, for the hint.
fn quantity(input: &str) -> Result<Quantity, &'static str> {
    let text = input.trim();
    if text
        .strip_prefix('-')
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit() || c == '.'))
    {
        return Err("it is negative: speeds and volumes are positive (leave out the -)");
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| "it does not start with a number such as 500 or 62.5")?;
    let mut after = unit.chars();
    match (after.next(), after.next()) {
        (Some(',' | '_' | '\''), Some(digit)) if digit.is_ascii_digit() => {
            return Err("write the number with a decimal point only (1.5, 1000; not 1,5 or 1_000)");
        }
        (Some('e' | 'E'), Some(next)) if next.is_ascii_digit() || next == '-' || next == '+' => {
            return Err("write the number in plain digits (1000, not 1e3)");
        }
        _ => {}
    }
    let unit = unit.trim_start();
    if unit.is_empty() {
        return Err("a number alone has no unit");
    }
    let (multiplier, rest) = prefix(unit);
    if rest.is_empty() {
        return Err("a prefix alone does not say bits (b) or bytes (B)");
    }
    // (bits, the unit is the one letter b or B, what follows)
    let (bits, letter, rest) = if let Some(rest) = strip_word(rest, &["bits", "bit"]) {
        (true, false, rest)
    } else if let Some(rest) = strip_word(rest, &["bytes", "byte"]) {
        (false, false, rest)
    } else if let Some(rest) = rest.strip_prefix('b') {
        (true, true, rest)
    } else if let Some(rest) = rest.strip_prefix('B') {
        (false, true, rest)
    } else {
        return Err("its unit is not bits (b) or bytes (B)");
    };
    let (per_second, shouted) = match rest {
        "" => (false, false),
        "/s" | "ps" => (true, false),
        "/S" | "PS" | "pS" | "Ps" => (true, letter && !bits),
        _ => return Err("it has an unknown unit"),
    };
    let value = number * multiplier;
    if !value.is_finite() {
        return Err("it is too large");
    }
    if value <= 0.0 {
        return Err("it must be above zero");
    }
    Ok(Quantity {
        value,
        bits,
        per_second,
        shouted,
    })
}

/// A decimal (`k`, `M`, `G`, `T`, `P`, either case) or binary (`Ki` … `Ti`) prefix at the start
/// of `unit`, with what follows it; 1 and `unit` itself without one. A `b`/`B` is never a
/// prefix, so `B/s` and `bit/s` have none.
fn prefix(unit: &str) -> (f64, &str) {
    let Some(first) = unit.chars().next() else {
        return (1.0, unit);
    };
    // The power of 1000 (decimal) or 1024 (binary, with an `i`) the prefix stands for.
    let power = match first.to_ascii_lowercase() {
        'k' => 1,
        'm' => 2,
        'g' => 3,
        't' => 4,
        'p' => 5,
        _ => return (1.0, unit),
    };
    let rest = &unit[first.len_utf8()..];
    match rest.strip_prefix(['i', 'I']) {
        Some(binary) => (1024f64.powi(power), binary),
        None => (1000f64.powi(power), rest),
    }
}

/// `text` after the first of `words` it starts with, ignoring case.
fn strip_word<'a>(text: &'a str, words: &[&str]) -> Option<&'a str> {
    words.iter().find_map(|word| {
        let head = text.get(..word.len())?;
        head.eq_ignore_ascii_case(word).then(|| &text[word.len()..])
    })
}

/// An amount of data in bytes, such as a monthly data budget.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct DataVolume(f64);

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{} is not a data volume: {reason}; {VOLUME_SPELLINGS}", crate::logging::quoted(.input))]
pub struct DataVolumeParseError {
    input: String,
    reason: &'static str,
}

impl DataVolume {
    pub fn bytes(self) -> f64 {
        self.0
    }
}

impl FromStr for DataVolume {
    type Err = DataVolumeParseError;

    /// Reads the rule of [`VOLUME_SPELLINGS`]: budgets and transfer limits are in bytes, so a
    /// lower-case `b` (bits: `200Gb`, `200gb`) is refused rather than read as bytes.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let refuse = |reason| DataVolumeParseError {
            input: input.to_owned(),
            reason,
        };
        let unit = quantity(input).map_err(refuse)?;
        if unit.per_second {
            return Err(refuse("/s and ps make it a speed"));
        }
        if unit.bits {
            return Err(refuse(
                "a lower-case b is bits, and volumes are in bytes (write 200GB, not 200Gb)",
            ));
        }
        Ok(DataVolume(unit.value))
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
mod tests;

/// Figures for people, in logs, messages and `run-once --format text`: speeds in Mbit/s,
/// latencies in ms, volumes in decimal MB or GB, each rounded so that it reads at a glance
/// (the stored samples and the API keep their full precision and base units).
///
/// Rounding ([`people`]): three significant digits, but whole numbers from 100 up (1234
/// stays 1234) and at least one decimal below 100 (50.04 → 50.0, 93.42 → 93.4, 5.123 → 5.12,
/// 0.5234 → 0.523). Milliseconds keep one decimal ([`ms`]).
pub(crate) mod for_people {
    /// `value` rounded for a person: three significant digits, whole numbers from 100 up, at
    /// least one decimal below 100. Not finite stays as it is.
    pub(crate) fn people(value: f64) -> f64 {
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
    pub(crate) fn mbit_s(bytes_per_second: f64) -> f64 {
        people(bytes_per_second * 8.0 / 1e6)
    }

    /// A time in seconds as milliseconds with one decimal (`ping_ms`, `jitter_ms`).
    pub(crate) fn ms(seconds: f64) -> f64 {
        if !seconds.is_finite() {
            return seconds;
        }
        (seconds * 1e4).round() / 10.0
    }

    /// A volume in bytes as decimal megabytes, rounded for a person (`data_used_mb`).
    pub(crate) fn mb(bytes: f64) -> f64 {
        people(bytes / 1e6)
    }

    /// A volume in bytes in words, in the decimal unit that keeps it short: `3.17 GB`,
    /// `512 MB`, `12.0 kB`, `800 B`.
    pub(crate) fn volume(bytes: f64) -> String {
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
    pub(crate) fn people_text(value: f64) -> String {
        let rounded = people(value);
        let text = rounded.to_string();
        if rounded.is_finite() && rounded.abs() < 100.0 && !text.contains('.') {
            format!("{text}.0")
        } else {
            text
        }
    }

    /// A rate in bytes per second in words: `93.4 Mbit/s`.
    pub(crate) fn speed(bytes_per_second: f64) -> String {
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

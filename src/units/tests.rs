//! Bandwidth in every spelling, and the refusals with their hints.

use super::*;

fn parse(text: &str) -> f64 {
    text.parse::<Bandwidth>()
        .unwrap_or_else(|err| panic!("{text}: {err}"))
        .bytes_per_second()
}

#[test]
fn bits_and_bytes_in_every_spelling() {
    assert_eq!(parse("500Mbit/s"), 62.5e6);
    assert_eq!(parse("1Gbps"), 125e6);
    assert_eq!(parse("62.5MB/s"), 62.5e6);
    assert_eq!(parse("100Gbit/s"), 12.5e9);
    assert_eq!(parse("800 kbit/s"), 100e3);
}

/// The spellings people write: prefixes in either case, `b`/`B` alone saying bits or
/// bytes, `ps` or `/s`, the words `bit(s)` and `byte(s)`.
#[test]
fn every_unambiguous_spelling_is_read() {
    for (text, bytes_per_second) in [
        ("500mbps", 62.5e6),
        ("500Mbps", 62.5e6),
        ("1gbps", 125e6),
        ("1Gb/s", 125e6),
        ("500Kbit/s", 62.5e3),
        ("500kbps", 62.5e3),
        ("500 Mbit/s", 62.5e6),
        ("500 mbit/s", 62.5e6),
        ("500MBit/s", 62.5e6),
        ("500 Mbits/s", 62.5e6),
        ("62.5MBps", 62.5e6),
        ("62.5mB/s", 62.5e6),
        ("62.5 MByte/s", 62.5e6),
        ("62.5 megabytes/s", f64::NAN),
        ("8bps", 1.0),
        ("1B/s", 1.0),
        ("1KiB/s", 1024.0),
        ("1 Tbit/s", 125e9),
    ] {
        if bytes_per_second.is_nan() {
            assert!(text.parse::<Bandwidth>().is_err(), "{text}");
        } else {
            assert_eq!(parse(text), bytes_per_second, "{text}");
        }
    }
}

/// Refused with the reason and the rule: no unit, a prefix without b/B, no /s, capitals
/// throughout, a volume unit.
#[test]
fn ambiguous_speeds_are_refused_with_a_hint() {
    for (bad, reason) in [
        ("500", "a number alone has no unit"),
        ("500m", "a prefix alone does not say bits (b) or bytes (B)"),
        ("500M", "a prefix alone does not say bits (b) or bytes (B)"),
        ("500mb", "a speed needs /s or ps"),
        ("500 MB", "a speed needs /s or ps"),
        ("500MBPS", "in capitals throughout"),
        ("500 megs", "its unit is not bits (b) or bytes (B)"),
        ("fast", "it does not start with a number"),
        ("0Mbit/s", "it must be above zero"),
        (
            "-5Mbit/s",
            "it is negative: speeds and volumes are positive",
        ),
        ("1..2Gbps", "it does not start with a number"),
        ("5Mbit/h", "it has an unknown unit"),
        (
            "1e309Mbit/s",
            "write the number in plain digits (1000, not 1e3)",
        ),
        ("5e-324bps", "write the number in plain digits"),
        ("1,5 Gbit/s", "write the number with a decimal point only"),
        ("1_000Mbps", "write the number with a decimal point only"),
        ("1'000Mbps", "write the number with a decimal point only"),
    ] {
        let err = bad.parse::<Bandwidth>().unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{bad:?} is not a speed: {reason}")),
            "{bad}: {err}"
        );
        assert!(err.ends_with(SPEED_SPELLINGS), "{err}");
        assert!(err.contains("500mbps") && err.contains("62.5MB/s"), "{err}");
    }
    // Too many digits for a number is too large, not zero.
    let huge = format!("{}Mbps", "9".repeat(400));
    let err = huge.parse::<Bandwidth>().unwrap_err().to_string();
    assert!(err.contains("is not a speed: it is too large"), "{err}");
    let huge = format!("{}GB", "9".repeat(400));
    let err = huge.parse::<DataVolume>().unwrap_err().to_string();
    assert!(
        err.contains("is not a data volume: it is too large"),
        "{err}"
    );
    // The smallest positive number of bits rounds to zero bytes.
    let tiny = format!("0.{}5bps", "0".repeat(323));
    let err = tiny.parse::<Bandwidth>().unwrap_err().to_string();
    assert!(
        err.contains("is not a speed: it must be above zero"),
        "{err}"
    );
}

#[test]
fn data_volumes_decimal_and_binary() {
    let bytes = |text: &str| {
        text.parse::<DataVolume>()
            .unwrap_or_else(|err| panic!("{text}: {err}"))
            .bytes()
    };
    assert_eq!(bytes("200GB"), 200e9);
    assert_eq!(bytes("200 gB"), 200e9);
    assert_eq!(bytes("200 GByte"), 200e9);
    assert_eq!(bytes("1.5TB"), 1.5e12);
    assert_eq!(bytes("1.5tb".to_uppercase().as_str()), 1.5e12);
    assert_eq!(bytes("2GiB"), 2.0 * 1073741824.0);
    assert_eq!(bytes("2gib".replace('b', "B").as_str()), 2.0 * 1073741824.0);
    assert_eq!(bytes("1PB"), 1e15);
    assert_eq!(bytes("512B"), 512.0);
    for (bad, reason) in [
        ("200Gb", "a lower-case b is bits"),
        ("200gb", "a lower-case b is bits"),
        ("200", "a number alone has no unit"),
        ("200G", "a prefix alone"),
        ("200GB/s", "/s and ps make it a speed"),
    ] {
        let err = bad.parse::<DataVolume>().unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{bad:?} is not a data volume: {reason}")),
            "{bad}: {err}"
        );
        assert!(err.ends_with(VOLUME_SPELLINGS), "{err}");
    }
}

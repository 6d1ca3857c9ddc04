//! Fuzzes the HTTP API's query-string parser and the value parsers behind its parameters:
//! any query string is answered with a value or a 400, never a panic.

#![no_main]

use internet_monitor::http::query::Query;
use internet_monitor::rules::RuleSet;
use internet_monitor::time::{TimeArg, Timestamp, parse_age};
use internet_monitor::units::{Bandwidth, DataVolume};
use internet_monitor::zone::Zone;
use libfuzzer_sys::fuzz_target;

/// Every parameter `/api/v1/samples` and `/api/v1/summary` take.
const ACCEPTED: [&str; 7] = ["from", "to", "limit", "cursor", "window", "rules", "tz"];

/// Runs `value` through each parser the API and the CLI use on such a value.
fn parse_value(value: &str, now: Timestamp) {
    if let Ok(arg) = value.parse::<TimeArg>() {
        let at = arg.resolve(now);
        if let TimeArg::Ago(_) = arg {
            assert!(at <= now, "{value:?} resolved into the future");
        }
        // Every time that parses formats (it panicked past year 9999).
        let _ = at.to_string();
    }
    let _ = value.parse::<usize>();
    let _ = value.parse::<u64>().map(Timestamp::from_millis);
    if let Ok(window) = parse_age(value) {
        let _ = now.saturating_sub(window).to_string();
    }
    if let Ok(bandwidth) = value.parse::<Bandwidth>() {
        let bytes = bandwidth.bytes_per_second();
        assert!(
            bytes > 0.0 && bytes.is_finite(),
            "{value:?} gave {bytes} B/s"
        );
    }
    if let Ok(rules) = RuleSet::parse(value) {
        assert_eq!(rules.name(), value);
    }
    if let Ok(zone) = Zone::parse(value) {
        let _ = zone.local(now);
    }
    if let Ok(volume) = value.parse::<DataVolume>() {
        let bytes = volume.bytes();
        assert!(bytes > 0.0 && bytes.is_finite(), "{value:?} gave {bytes} B");
    }
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let now = Timestamp::now();
    let _ = Timestamp::parse_rfc3339(&raw).map(|time| time.to_string());
    for accepted in [&ACCEPTED[..], &[]] {
        let Ok(query) = Query::parse(Some(&raw), accepted) else {
            continue;
        };
        for name in accepted {
            if let Some(value) = query.get(name) {
                parse_value(value, now);
            }
        }
    }
    // The raw text as a single value, as the CLI's --from/--to/--max-bandwidth would see it.
    parse_value(&raw, now);
});

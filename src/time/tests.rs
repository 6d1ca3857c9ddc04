//! Timestamps: formatting, parsing, offsets, ranges and the limits' text.

use super::*;

#[test]
fn formats_utc_with_milliseconds() {
    assert_eq!(
        Timestamp::from_millis(1_795_546_073_292).to_string(),
        "2026-11-24T18:47:53.292Z"
    );
    assert_eq!(Timestamp::EPOCH.to_string(), "1970-01-01T00:00:00.000Z");
}

#[test]
fn every_value_formats_including_the_extremes() {
    assert_eq!(Timestamp::MAX.to_string(), "9999-12-30T22:00:00.000Z");
    assert_eq!(Timestamp::from_millis(u64::MAX), Timestamp::MAX);
    assert_eq!(Timestamp::try_from_millis(MAX_MILLIS + 1), None);
    assert_eq!(Timestamp::try_from_millis(MAX_MILLIS), Some(Timestamp::MAX));
    for millis in [0, 1, MAX_MILLIS - 1, MAX_MILLIS, u64::MAX] {
        let time = Timestamp::from_millis(millis);
        assert_eq!(Timestamp::parse_rfc3339(&time.to_string()), Some(time));
    }
}

#[test]
fn parses_zulu_and_offsets_to_the_same_instant() {
    let zulu = Timestamp::parse_rfc3339("2026-11-24T18:00:00Z").unwrap();
    assert_eq!(
        Timestamp::parse_rfc3339("2026-11-24T19:30:00+01:30"),
        Some(zulu)
    );
    assert_eq!(
        Timestamp::parse_rfc3339("2026-11-24T13:00:00-05:00"),
        Some(zulu)
    );
    assert_eq!(
        Timestamp::parse_rfc3339("2026-11-24T18:00:00.123456Z").map(|t| t.as_millis()),
        Some(zulu.as_millis() + 123)
    );
}

#[test]
fn the_offset_is_applied_before_the_range_is_checked() {
    // Year 9999 locally, year 10000 in UTC: refused with a reason, never a panic.
    assert_eq!(
        Timestamp::parse("9999-12-31T23:59:59-23:59"),
        Err(TimeError::AfterMax {
            input: "9999-12-31T23:59:59-23:59".into()
        })
    );
    assert_eq!(
        "9999-12-31T23:59:59-23:59"
            .parse::<TimeArg>()
            .unwrap_err()
            .to_string(),
        "\"9999-12-31T23:59:59-23:59\" is after 9999-12-30T22:00:00.000Z, the latest time kept"
    );
    assert!(matches!(
        Timestamp::parse("1970-01-01T00:30:00+01:00"),
        Err(TimeError::BeforeEpoch { .. })
    ));
    assert!(matches!(
        Timestamp::parse("1969-12-31T23:59:59.999Z"),
        Err(TimeError::BeforeEpoch { .. })
    ));
    assert_eq!(
        Timestamp::parse("1970-01-01T01:00:00+01:00"),
        Ok(Timestamp::EPOCH)
    );
}

#[test]
fn month_bounds_in_utc_including_the_year_end() {
    let at = |text: &str| Timestamp::parse_rfc3339(text).unwrap();
    assert_eq!(
        at("2026-11-25T21:00:00.123Z").month(),
        (at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"))
    );
    assert_eq!(
        at("2026-12-31T23:59:59.999Z").month(),
        (at("2026-12-01T00:00:00Z"), at("2027-01-01T00:00:00Z"))
    );
    assert_eq!(
        at("2027-01-01T00:00:00Z").month(),
        (at("2027-01-01T00:00:00Z"), at("2027-02-01T00:00:00Z"))
    );
    assert_eq!(
        Timestamp::MAX.month(),
        (at("9999-12-01T00:00:00Z"), Timestamp::MAX)
    );
}

#[test]
fn arithmetic_is_bounded() {
    let year = Duration::from_secs(365 * 86_400);
    assert_eq!(Timestamp::MAX.checked_add(Duration::from_millis(1)), None);
    assert_eq!(Timestamp::MAX.saturating_add(Duration::MAX), Timestamp::MAX);
    assert_eq!(Timestamp::EPOCH.checked_sub(Duration::from_millis(1)), None);
    assert_eq!(
        Timestamp::EPOCH.saturating_sub(Duration::MAX),
        Timestamp::EPOCH
    );
    let now = Timestamp::from_millis(1_795_546_073_292);
    assert_eq!(now.saturating_add(year).duration_since(now), year);
    assert_eq!(now.duration_since(now.saturating_add(year)), Duration::ZERO);
}

#[test]
fn round_trips_its_own_format() {
    let time = Timestamp::from_millis(1_700_000_000_001);
    assert_eq!(Timestamp::parse_rfc3339(&time.to_string()), Some(time));
}

#[test]
fn an_age_counts_back_from_now() {
    let now = Timestamp::from_millis(10 * 86_400_000);
    let age: TimeArg = "7d".parse().unwrap();
    assert_eq!(age.resolve(now), Timestamp::from_millis(3 * 86_400_000));
    let long: TimeArg = "36500d".parse().unwrap();
    assert_eq!(long.resolve(now), Timestamp::EPOCH);
}

#[test]
fn an_age_is_bounded() {
    assert_eq!(
        "300000000000y".parse::<TimeArg>().unwrap_err().to_string(),
        "\"300000000000y\" is an age longer than 36500d, the longest accepted"
    );
    assert_eq!(
        parse_age("36501d").unwrap_err().to_string(),
        "must be at most 36500d (got 36501d)"
    );
    assert_eq!(parse_age("0s"), Err(TimeError::DurationZero));
    assert!(matches!(
        parse_age("soon"),
        Err(TimeError::DurationSyntax { .. })
    ));
}

#[test]
fn a_date_is_its_midnight_utc() {
    let midnight = Timestamp::parse("2026-11-30T00:00:00Z").unwrap();
    assert_eq!("2026-11-30".parse::<TimeArg>(), Ok(TimeArg::At(midnight)));
    assert_eq!(" 2026-11-30 ".parse::<TimeArg>(), Ok(TimeArg::At(midnight)));
    assert_eq!(
        "1970-01-01".parse::<TimeArg>(),
        Ok(TimeArg::At(Timestamp::EPOCH))
    );
    assert!(matches!(
        "1969-12-31".parse::<TimeArg>(),
        Err(TimeError::BeforeEpoch { .. })
    ));
    assert!(matches!(
        "9999-12-31".parse::<TimeArg>(),
        Err(TimeError::AfterMax { .. })
    ));
    for (no_such_day, rule) in [
        ("2026-02-30", "February 2026 has 28 days"),
        ("2024-02-30", "February 2024 has 29 days"),
        ("2026-04-31T00:00:00Z", "April 2026 has 30 days"),
        ("2026-13-01", "months are 01 to 12"),
        ("2026-00-10", "months are 01 to 12"),
        ("2026-02-30T00:00:00Z", "February 2026 has 28 days"),
    ] {
        let err = no_such_day.parse::<TimeArg>().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{no_such_day:?} names a day that does not exist: {rule}")
        );
    }
    for refused in ["2026-1-30", "20261130", "+2026-11-30", "2026-02-3x"] {
        let err = refused.parse::<TimeArg>().unwrap_err();
        assert!(
            matches!(err, TimeError::Unrecognised { .. }),
            "{refused}: {err}"
        );
    }
}

#[test]
fn a_duration_says_what_is_wrong_with_it() {
    let max = Duration::from_secs(86_400);
    let message = |text| parse_duration(text, false, max).unwrap_err().to_string();
    assert_eq!(message("0s"), "must be longer than zero");
    assert_eq!(message("99999999999999999999d"), "must be at most 1d");
    assert!(matches!(
        "99999999999999999999d".parse::<TimeArg>(),
        Err(TimeError::AgeTooLong { .. })
    ));
    assert_eq!(
        message("-5m"),
        "must be positive, not negative (write it like 90s, 2m, 1h 30m or 7d)"
    );
    assert_eq!(message("2d"), "must be at most 1d (got 2d)");
    assert!(message("soon").ends_with("(write it like 90s, 2m, 1h 30m or 7d)"));
}

/// A time that lacks only its zone, or whose `+` a URL's query read as a space, says so.
#[test]
fn a_time_without_its_zone_or_its_plus_says_what_to_write() {
    for no_zone in ["2026-12-01T04:00:00", "2026-12-01 04:00:00.5"] {
        let err = no_zone.parse::<TimeArg>().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{no_zone:?} has no time zone: add Z for UTC (2026-11-24T18:00:00Z) or an offset (+01:00)"
            )
        );
    }
    let err = "2026-12-01T04:00:00 01:00".parse::<TimeArg>().unwrap_err();
    assert!(matches!(err, TimeError::SpaceForPlus { .. }), "{err}");
    assert!(err.to_string().contains("write it %2B"), "{err}");
    // A real age or a date is not taken for either.
    assert!("1h 30m".parse::<TimeArg>().is_ok());
    assert!("2026-12-01".parse::<TimeArg>().is_ok());
}

#[test]
fn rejects_what_is_neither() {
    let err = "yesterday".parse::<TimeArg>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "\"yesterday\" is neither an RFC 3339 time (2026-11-24T18:00:00Z), a date \
         (2026-11-24, its midnight UTC) nor an age (7d, 24h)"
    );
    for refused in [
        "2026-11-24T18:00:00+25:00",
        "2026-11-24T18:00:00+24:00",
        "2026-11-24T18:00:00",
        "2026-11-24",
        "2026-11-24T18:00:00Z[Europe/Paris]",
    ] {
        assert_eq!(Timestamp::parse_rfc3339(refused), None, "{refused}");
    }
}

#[test]
fn limits_are_written_as_people_write_them() {
    assert_eq!(format_limit(Duration::from_secs(7 * 86_400)), "7d");
    assert_eq!(format_limit(Duration::from_secs(3_600)), "1h");
    assert_eq!(format_limit(Duration::from_secs(90)), "90s");
    assert_eq!(format_limit(Duration::from_secs(120)), "2m");
    assert_eq!(format_limit(Duration::from_secs(36 * 3_600)), "36h");
    // humantime's months and years (`--retention 3M`, `1y`) come back as written, and a
    // length in no whole unit is humantime's, not a count of seconds.
    let parsed = |text: &str| humantime::parse_duration(text).unwrap();
    assert_eq!(format_limit(parsed("3M")), "3months");
    assert_eq!(format_limit(parsed("1y")), "1year");
    assert_eq!(format_limit(parsed("1y 2M")), "1year 2months");
    assert_eq!(format_limit(Duration::from_secs(86_399)), "23h 59m 59s");
    assert_eq!(format_limit(Duration::from_secs(3_599)), "3599s");
}

#[test]
fn a_clock_before_the_source_date_is_wrong() {
    assert_eq!(ClockCheck::of(source_date()), ClockCheck::Plausible);
    let slack = source_date().saturating_sub(SOURCE_DATE_SLACK);
    assert_eq!(ClockCheck::of(slack), ClockCheck::Plausible);
    let early = Timestamp::from_millis(1_000);
    assert_eq!(
        ClockCheck::of(early),
        ClockCheck::BeforeSourceDate {
            now: early,
            source_date: source_date()
        }
    );
}

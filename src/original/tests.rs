//! The import of the original app's database: times, rows, and what is skipped.

use std::sync::Arc;

use super::*;

const LIMITS: Limits = Limits {
    max_bytes_per_second: 1.25e9,
};

fn local(text: &str) -> civil::DateTime {
    text.parse().unwrap()
}

/// A file of this program's own given to --from-original is named as what it is, with
/// the command that reads it: an export (JSON lines) or a database file.
#[test]
fn a_file_of_this_program_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("export.jsonl");
    std::fs::write(
        &jsonl,
        "\u{FEFF}{\"time\":\"2026-11-01T00:00:00.000Z\"}\n".repeat(400),
    )
    .unwrap();
    let redb = dir.path().join("samples.redb");
    drop(Store::open(&redb).unwrap());
    let csv = dir.path().join("notes.txt");
    std::fs::write(&csv, "download,upload,ping\n".repeat(40)).unwrap();
    let said = |path: &Path| open_source(path).map(drop).unwrap_err().to_string();
    assert!(
        said(&jsonl).contains(
            "is not an SQLite database; it looks like JSON lines (`export --format jsonl`): \
             import it without --from-original"
        ),
        "{}",
        said(&jsonl)
    );
    assert!(
        said(&redb).contains(
            "is not an SQLite database; it is a database file of this program: use it as --db"
        ),
        "{}",
        said(&redb)
    );
    assert!(
        said(&csv).contains("is not an SQLite database: --from-original reads"),
        "{}",
        said(&csv)
    );
}

#[test]
fn the_originals_time_text_is_read_to_the_nanosecond_and_nothing_else_is() {
    for (text, expected) in [
        // SQLAlchemy's form, and SQLite's own datetime() without a fraction.
        ("2022-02-25 11:43:08.759391", "2022-02-25T11:43:08.759391"),
        ("2022-02-25 11:43:08", "2022-02-25T11:43:08"),
        ("2022-02-25T11:43:08.5", "2022-02-25T11:43:08.5"),
        (
            "2022-02-25 11:43:08.123456789",
            "2022-02-25T11:43:08.123456789",
        ),
        ("2024-02-29 23:59:59.000", "2024-02-29T23:59:59"),
        ("0001-01-01 00:00:00", "0001-01-01T00:00:00"),
    ] {
        assert_eq!(parse_local_time(text), Some(local(expected)), "{text}");
    }
    for text in [
        "",
        "2022-02-25",
        "2022-02-25 11:43",
        "2022-02-25 11:43:08.",
        "2022-02-25 11:43:08.1234567890",
        "2022-02-25 11:43:08Z",
        "2022-02-25 11:43:08+01:00",
        "2022-02-25 11:43:08.759391+00:00",
        " 2022-02-25 11:43:08",
        "2022-02-25 11:43:08 ",
        "2022-02-25_11:43:08",
        "2022/02/25 11:43:08",
        "2022-2-25 11:43:08.",
        "2023-02-29 11:43:08",
        "2022-02-25 24:00:00",
        "2022-02-25 23:59:60",
        "2022-13-01 00:00:00",
        "+022-02-25 11:43:08",
        "2022-02-25 1a:43:08",
        "２０２２-02-25 11:43:08",
        "1645789388",
    ] {
        assert_eq!(parse_local_time(text), None, "{text:?}");
    }
}

fn row<'a>(
    download: ValueRef<'a>,
    upload: ValueRef<'a>,
    ping: ValueRef<'a>,
    timestamp: ValueRef<'a>,
) -> Row<'a> {
    Row {
        id: ValueRef::Integer(1),
        download,
        upload,
        ping,
        timestamp,
    }
}

fn text(text: &str) -> ValueRef<'_> {
    ValueRef::Text(text.as_bytes())
}

#[test]
fn a_row_is_a_successful_scheduled_ookla_run_with_its_three_figures() {
    let berlin = Zone::parse("Europe/Berlin").unwrap();
    let in_berlin =
        |row: &Row<'_>| convert(row, berlin.time_zone(), &LIMITS, Timestamp::MAX, None).unwrap();
    let converted = in_berlin(&row(
        ValueRef::Real(10870309.0),
        ValueRef::Integer(2381515),
        ValueRef::Real(14.799),
        text("2026-11-30 14:03:12.123456"),
    ));
    assert_eq!(converted.fit, Fit::Exact);
    assert_eq!(converted.local, local("2026-11-30T14:03:12.123456"));
    let expected = Sample {
        download_bytes_per_second: Some(10870309.0),
        upload_bytes_per_second: Some(2381515.0),
        ping_seconds: Some(0.014799),
        engine: Some(Arc::new(Engine::ookla())),
        ..Sample::empty(
            "2026-11-30T13:03:12.123Z".parse().unwrap(),
            Trigger::Schedule,
        )
    };
    assert_eq!(converted.sample, expected);
    assert_eq!(converted.sample.validate(), Ok(()));
    // Numbers kept as text (a table without column types) read as numbers.
    let from_text = in_berlin(&row(
        text("10870309"),
        text("2381515.0"),
        text("14.799"),
        text("2026-11-30 14:03:12.123456"),
    ));
    assert_eq!(from_text.sample, expected);
}

#[test]
fn daylight_saving_changes_take_the_earlier_time_and_move_a_missing_one_forward() {
    let berlin = Zone::parse("Europe/Berlin").unwrap();
    let at = |time: &str, previous: Option<Timestamp>| {
        convert(
            &row(
                ValueRef::Real(1.0),
                ValueRef::Real(1.0),
                ValueRef::Real(1.0),
                text(time),
            ),
            berlin.time_zone(),
            &LIMITS,
            Timestamp::MAX,
            previous,
        )
        .map(|converted| (converted.sample.time.to_string(), converted.fit))
    };
    for (local, utc, fit) in [
        // 2026-10-25 03:00 CEST became 02:00 CET: 02:30 happened at 00:30Z and at 01:30Z.
        ("2026-10-25 02:30:00", "2026-10-25T00:30:00.000Z", Fit::Fold),
        (
            "2026-10-25 03:00:00",
            "2026-10-25T02:00:00.000Z",
            Fit::Exact,
        ),
        // 2026-03-29 02:00 CET became 03:00 CEST: 02:30 never happened; an hour on, 01:30Z.
        ("2026-03-29 02:30:00", "2026-03-29T01:30:00.000Z", Fit::Gap),
        (
            "2026-03-29 01:59:59.999",
            "2026-03-29T00:59:59.999Z",
            Fit::Exact,
        ),
        // The store keeps milliseconds: the microseconds are cut, not rounded.
        (
            "2026-01-01 00:00:00.999999",
            "2025-12-31T23:00:00.999Z",
            Fit::Exact,
        ),
    ] {
        assert_eq!(at(local, None), Ok((utc.to_owned(), fit)), "{local}");
    }
    // The repeated hour's second pass: the row before is dated between the two instants.
    let fold = "2026-10-25 02:30:00";
    for (previous, utc, fit) in [
        (
            "2026-10-25T00:30:00Z",
            "2026-10-25T01:30:00.000Z",
            Fit::FoldLater,
        ),
        (
            "2026-10-25T01:00:00Z",
            "2026-10-25T01:30:00.000Z",
            Fit::FoldLater,
        ),
        (
            "2026-10-25T00:29:59Z",
            "2026-10-25T00:30:00.000Z",
            Fit::Fold,
        ),
        // A row out of time order (dated after both) says nothing about this one.
        (
            "2026-11-01T00:00:00Z",
            "2026-10-25T00:30:00.000Z",
            Fit::Fold,
        ),
    ] {
        let previous = Timestamp::parse_rfc3339(previous).unwrap();
        assert_eq!(
            at(fold, Some(previous)),
            Ok((utc.to_owned(), fit)),
            "{previous}"
        );
    }
}

#[test]
fn rows_that_cannot_be_samples_say_why() {
    let utc = TimeZone::UTC;
    let good = row(
        ValueRef::Real(1e6),
        ValueRef::Real(1e6),
        ValueRef::Real(10.0),
        text("2026-11-30 14:03:12"),
    );
    let err = |row: Row<'_>, latest: Timestamp| {
        convert(&row, &utc, &LIMITS, latest, None)
            .unwrap_err()
            .to_string()
    };
    let cases = [
        (
            Row {
                download: ValueRef::Null,
                ..good
            },
            "download is empty (NULL)",
        ),
        (
            Row {
                upload: text("fast"),
                ..good
            },
            "upload is the text \"fast\", not a number",
        ),
        (
            Row {
                ping: ValueRef::Blob(&[1, 2, 3]),
                ..good
            },
            "ping is a blob of 3 bytes, not a number",
        ),
        (
            Row {
                timestamp: ValueRef::Null,
                ..good
            },
            "timestamp is empty (NULL)",
        ),
        (
            Row {
                timestamp: ValueRef::Real(1645789388.5),
                ..good
            },
            "timestamp is the number 1645789388.5, not a time like 2022-02-25 11:43:08.759391",
        ),
        (
            Row {
                timestamp: text("2026-11-30 14:03:12\n\u{1b}[31m"),
                ..good
            },
            "timestamp is the text \"2026-11-30 14:03:12\\n\\u{1b}[31m\", not a time like 2022-02-25 11:43:08.759391",
        ),
        (
            Row {
                timestamp: text("1969-12-31 23:59:59"),
                ..good
            },
            "timestamp 1969-12-31T23:59:59 is outside the times this program stores (1970-01-01T00:00:00.000Z to 9999-12-30T22:00:00.000Z)",
        ),
        (
            Row {
                download: ValueRef::Real(-5.0),
                ..good
            },
            "implausible: download -5 B/s is negative",
        ),
        (
            Row {
                ping: ValueRef::Real(60_001.0),
                ..good
            },
            "implausible: ping 60.001 s is above 60 s",
        ),
    ];
    for (row, expected) in cases {
        assert_eq!(err(row, Timestamp::MAX), expected);
    }
    assert_eq!(
        err(good, "2026-11-30T14:03:11Z".parse().unwrap()),
        "timestamp 2026-11-30T14:03:12 is 2026-11-30T14:03:12.000Z, more than a day after this machine's clock: a wrong clock wrote it, or this clock is behind"
    );
    let long = "x".repeat(100);
    assert_eq!(
        describe(text(&long)),
        format!("the text {:?}…", "x".repeat(QUOTED_BYTES))
    );
}

#[test]
fn the_summary_counts_every_row_and_names_the_first_few() {
    let berlin = Zone::parse("Europe/Berlin").unwrap();
    let mut tally = Tally::default();
    let times = [
        "2026-10-25 02:30:00",
        "2026-03-29 02:30:00",
        "2026-11-30 14:03:12.123456",
    ];
    for (place, time) in times.into_iter().enumerate() {
        let values = row(
            ValueRef::Real(1e6),
            ValueRef::Real(1e6),
            ValueRef::Real(10.0),
            text(time),
        );
        let converted = convert(&values, berlin.time_zone(), &LIMITS, Timestamp::MAX, None);
        tally.add(label(values.id, place as u64 + 1), &converted);
    }
    for place in 0..12u64 {
        tally.add(
            label(ValueRef::Null, place + 4),
            &Err(RowError::Null("ping")),
        );
    }
    let lines = tally.lines(2, Path::new("old.db"), &berlin, true);
    let mut expected = vec![
        "imported 2 new samples from the original app's database old.db (15 rows read, 1 already stored, 12 skipped), its local times read in Europe/Berlin (--timezone)".to_owned(),
        "the rows run from 2026-03-29T01:30:00.000Z to 2026-11-30T13:03:12.123Z".to_owned(),
        "1 row at a local time that occurred twice (the clocks went back), taken as the earlier, or as the later when the row before it is dated between the two (the original wrote it in the repeated hour): id 1 2026-10-25T02:30:00 → 2026-10-25T00:30:00.000Z (the earlier)".to_owned(),
        "1 row at a local time that never occurred (the clocks went forward), moved forward by the gap: id 1 2026-03-29T02:30:00 → 2026-03-29T01:30:00.000Z".to_owned(),
    ];
    expected.extend((4..14).map(|place| format!("skipped row {place}: ping is empty (NULL)")));
    expected.push("skipped 2 more rows".to_owned());
    assert_eq!(lines, expected);
    let utc = Tally::default().lines(0, Path::new("old.db"), &Zone::utc(), false);
    assert_eq!(
        utc,
        [
            "imported 0 new samples from the original app's database old.db (0 rows read, 0 already stored, 0 skipped), its local times read in UTC (this machine's zone; --timezone names another)"
        ]
    );
}

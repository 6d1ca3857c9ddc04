//! Samples as CSV rows: evidence a person can open in a spreadsheet or send to the ISP.

use std::borrow::Cow;

use crate::sample::{Sample, mbit_per_second, millis, percent};

/// The header row. Speeds come in bytes/s (exact) and Mbit/s (what contracts say).
pub const HEADER: &str = "time,outcome,reason,message,trigger,duration_seconds,\
download_bytes_per_second,download_mbit_per_second,upload_bytes_per_second,upload_mbit_per_second,\
ping_seconds,ping_ms,jitter_seconds,jitter_ms,packet_loss_ratio,packet_loss_percent,download_latency_seconds,upload_latency_seconds,\
downloaded_bytes,uploaded_bytes,server_id,server_name,server_location,server_country,server_host,\
isp,result_url";

/// One row, without the line ending; an unknown value is an empty cell.
pub fn row(sample: &Sample) -> String {
    let number = |value: Option<f64>| value.map(|v| v.to_string()).unwrap_or_default();
    let integer = |value: Option<u64>| value.map(|v| v.to_string()).unwrap_or_default();
    let mbit = |value: Option<f64>| number(value.map(mbit_per_second));
    let server = sample.server.as_deref();
    let text = |value: Option<&str>| escape(value.unwrap_or_default()).into_owned();
    let cells = [
        sample.time.to_string(),
        sample.outcome.as_str().to_owned(),
        sample
            .reason
            .map(|r| r.as_str())
            .unwrap_or_default()
            .to_owned(),
        text(sample.message.as_deref()),
        sample.trigger.as_str().to_owned(),
        number(sample.duration_seconds),
        number(sample.download_bytes_per_second),
        mbit(sample.download_bytes_per_second),
        number(sample.upload_bytes_per_second),
        mbit(sample.upload_bytes_per_second),
        number(sample.ping_seconds),
        number(sample.ping_seconds.map(millis)),
        number(sample.jitter_seconds),
        number(sample.jitter_seconds.map(millis)),
        number(sample.packet_loss_ratio),
        number(sample.packet_loss_ratio.map(percent)),
        number(sample.download_latency_seconds),
        number(sample.upload_latency_seconds),
        integer(sample.downloaded_bytes),
        integer(sample.uploaded_bytes),
        integer(server.and_then(|s| s.id)),
        text(server.and_then(|s| s.name.as_deref())),
        text(server.and_then(|s| s.location.as_deref())),
        text(server.and_then(|s| s.country.as_deref())),
        text(server.and_then(|s| s.host.as_deref())),
        text(sample.isp.as_deref()),
        text(sample.result_url.as_deref()),
    ];
    cells.join(",")
}

/// Quotes a cell that holds a comma, quote or line break (RFC 4180), doubling inner quotes.
fn escape(cell: &str) -> Cow<'_, str> {
    if cell.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", cell.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{FailureReason, Trigger};
    use crate::time::Timestamp;

    #[test]
    fn header_and_row_have_the_same_width() {
        let sample = Sample::empty(Timestamp::from_millis(0), Trigger::Manual);
        assert_eq!(HEADER.split(',').count(), row(&sample).split(',').count());
    }

    #[test]
    fn failure_row_quotes_the_message() {
        let sample = Sample::failure(
            Timestamp::from_millis(1_700_000_000_000),
            Trigger::Schedule,
            FailureReason::Exit,
            "exit status 2: said \"no\", twice",
        );
        assert_eq!(
            row(&sample),
            "2023-11-14T22:13:20.000Z,failure,exit,\"exit status 2: said \"\"no\"\", twice\",schedule,,,,,,,,,,,,,,,,,,,,,,"
        );
    }

    #[test]
    fn speeds_in_bytes_and_megabits() {
        let sample = Sample {
            download_bytes_per_second: Some(62_500_000.0),
            ping_seconds: Some(0.0125),
            ..Sample::empty(Timestamp::from_millis(0), Trigger::Manual)
        };
        let cells: Vec<String> = row(&sample).split(',').map(str::to_owned).collect();
        assert_eq!(cells[6], "62500000");
        assert_eq!(cells[7], "500");
        assert_eq!(cells[11], "12.5");
    }
}

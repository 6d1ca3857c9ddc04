//! Fuzzes the Ookla CLI output parser: any stdout, stderr and exit status must give a sample
//! that keeps the parser's promises, never a panic.
//!
//! Input layout (missing bytes read as zero), the same as `fuzz/run.sh` writes its seeds in:
//!
//! | bytes   | meaning                                                                  |
//! |---------|--------------------------------------------------------------------------|
//! | 0       | flags: bit 0 `store_ip`, bit 1 killed by a signal, bits 2-3 the ceiling  |
//! | 1..5    | exit code or signal number, `i32` little-endian                          |
//! | 5..9    | length of stdout, `u32` little-endian (cut to what is left)               |
//! | 9..     | stdout, then stderr                                                      |

#![no_main]

use internet_monitor::sample::{
    MAX_NAME_BYTES, MAX_TEST_SECONDS, MAX_URL_BYTES, Outcome, Sample, Trigger,
};
use internet_monitor::speedtest::ookla::{Exit, ParseOptions, RunOutput, parse};
use internet_monitor::time::Timestamp;
use libfuzzer_sys::fuzz_target;

/// `--max-bandwidth` values to try: the CLI's default (100 Gbit/s), the largest a user could
/// write, a slow line, and the smallest.
const CEILINGS: [f64; 4] = [12.5e9, f64::MAX, 1e6, 1.0];
/// The parser's message limit, the ellipsis it appends when it cuts included.
const MESSAGE_MAX: usize = 300;

fn split(data: &[u8]) -> (RunOutput, ParseOptions) {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let word = |at: usize| [byte(at), byte(at + 1), byte(at + 2), byte(at + 3)];
    let flags = byte(0);
    let status = i32::from_le_bytes(word(1));
    let rest = data.get(9..).unwrap_or_default();
    let stdout_len = usize::try_from(u32::from_le_bytes(word(5)))
        .unwrap_or(usize::MAX)
        .min(rest.len());
    let (stdout, stderr) = rest.split_at(stdout_len);
    let output = RunOutput {
        stdout: stdout.to_vec(),
        stderr: stderr.to_vec(),
        exit: if flags & 2 == 0 {
            Exit::Code(status)
        } else {
            Exit::Signal(status)
        },
    };
    let options = ParseOptions {
        store_ip: flags & 1 == 1,
        max_bytes_per_second: CEILINGS[usize::from((flags >> 2) & 3)],
    };
    (output, options)
}

fn check_seconds(name: &str, value: Option<f64>) {
    if let Some(value) = value {
        assert!(
            (0.0..=60.0).contains(&value),
            "{name} {value} s in a success"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let (output, options) = split(data);
    let base = Sample::empty(Timestamp::from_millis(0), Trigger::Manual);
    let sample = parse(&output, base.clone(), &options);

    // What the runner set stays as it was.
    assert_eq!(sample.time, base.time);
    assert_eq!(sample.trigger, base.trigger);
    assert_eq!(sample.duration_seconds, base.duration_seconds);
    // Success XOR a reason; the parser never skips.
    assert!(sample.validate().is_ok(), "{sample:?}");
    assert_ne!(sample.outcome, Outcome::Skipped);
    if !options.store_ip {
        assert!(sample.client.is_none(), "client kept without --store-ip");
    }

    match sample.outcome {
        Outcome::Success => {
            assert!(sample.reason.is_none() && sample.message.is_none());
            for (name, value) in [
                ("download", sample.download_bytes_per_second),
                ("upload", sample.upload_bytes_per_second),
                ("ping", sample.ping_seconds),
            ] {
                let value = value.unwrap_or_else(|| panic!("success without {name}"));
                assert!(
                    value.is_finite() && value >= 0.0,
                    "{name} {value} in a success"
                );
            }
            let ceiling = options.max_bytes_per_second;
            assert!(sample.download_bytes_per_second.unwrap() <= ceiling);
            assert!(sample.upload_bytes_per_second.unwrap() <= ceiling);
            check_seconds("ping", sample.ping_seconds);
            check_seconds("jitter", sample.jitter_seconds);
            check_seconds("download latency", sample.download_latency_seconds);
            check_seconds("upload latency", sample.upload_latency_seconds);
            if let Some(loss) = sample.packet_loss_ratio {
                assert!((0.0..=1.0).contains(&loss), "packet loss ratio {loss}");
            }
            let most_bytes = ceiling * MAX_TEST_SECONDS;
            for bytes in [sample.downloaded_bytes, sample.uploaded_bytes] {
                assert!(bytes.is_none_or(|bytes| bytes as f64 <= most_bytes));
            }
            // Names are cut to their limit, a longer result URL left out.
            let server = sample.server.as_deref();
            for name in [
                sample.isp.as_deref(),
                server.and_then(|s| s.name.as_deref()),
                server.and_then(|s| s.location.as_deref()),
                server.and_then(|s| s.country.as_deref()),
                server.and_then(|s| s.host.as_deref()),
            ] {
                assert!(name.is_none_or(|name| name.len() <= MAX_NAME_BYTES));
            }
            assert!(
                sample
                    .result_url
                    .as_deref()
                    .is_none_or(|url| url.len() <= MAX_URL_BYTES)
            );
            // The rules import and every other way in share.
            assert_eq!(sample.check_plausible(&options.limits()), Ok(()));
        }
        _ => {
            assert!(sample.reason.is_some());
            let message = sample.message.as_deref().expect("a failure has a message");
            assert!(!message.is_empty());
            assert!(
                message.len() <= MESSAGE_MAX,
                "message of {} bytes",
                message.len()
            );
            for value in [
                sample.download_bytes_per_second,
                sample.upload_bytes_per_second,
                sample.ping_seconds,
            ] {
                assert!(value.is_none(), "a failure with measurements");
            }
            assert!(sample.downloaded_bytes.is_none() && sample.uploaded_bytes.is_none());
        }
    }
});

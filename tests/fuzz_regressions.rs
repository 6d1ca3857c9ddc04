//! Inputs the fuzz targets in `fuzz/` failed on, kept as tests of the functions they call.

use internet_monitor::sample::{FailureReason, Outcome, Sample, Trigger};
use internet_monitor::speedtest::ookla::{Exit, ParseOptions, RunOutput, parse};
use internet_monitor::time::Timestamp;

fn parse_stdout(stdout: &str) -> Sample {
    let output = RunOutput {
        stdout: stdout.as_bytes().to_vec(),
        stderr: Vec::new(),
        exit: Exit::Code(0),
    };
    let options = ParseOptions {
        store_ip: false,
        max_bytes_per_second: 12.5e9,
    };
    parse(
        &output,
        Sample::empty(Timestamp::from_millis(0), Trigger::Manual),
        &options,
    )
}

/// A latency so large in ms that it overflows to infinity in seconds is implausible, not a
/// success with an infinite ping (`ookla_parse`, fuzz/run.sh).
#[test]
fn latency_overflowing_to_infinity_is_implausible() {
    for (ping, jitter, iqm) in [
        ("1e306", "0", "0"),
        ("1", "1e306", "0"),
        ("1", "0", "1e306"),
    ] {
        let sample = parse_stdout(&format!(
            r#"{{"type":"result","ping":{{"latency":{ping},"jitter":{jitter}}},
               "download":{{"bandwidth":100,"latency":{{"iqm":{iqm}}}}},"upload":{{"bandwidth":100}}}}"#
        ));
        assert_eq!(sample.outcome, Outcome::Failure, "{sample:?}");
        assert_eq!(sample.reason, Some(FailureReason::Implausible));
    }
}

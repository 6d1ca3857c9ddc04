//! One test per recorded CLI behaviour in `tests/fixtures/`, plus the synthetic edge cases.

use super::*;
use crate::sample::Trigger;
use crate::time::Timestamp;

const OPTIONS: ParseOptions = ParseOptions {
    store_ip: false,
    max_bytes_per_second: 12.5e9,
};

macro_rules! fixture {
    ($name:literal) => {
        RunOutput {
            stdout: include_bytes!(concat!("../../../tests/fixtures/", $name, ".stdout")).to_vec(),
            stderr: include_bytes!(concat!("../../../tests/fixtures/", $name, ".stderr")).to_vec(),
            exit: Exit::Code(
                include_str!(concat!("../../../tests/fixtures/", $name, ".rc"))
                    .trim()
                    .parse()
                    .unwrap(),
            ),
        }
    };
}

fn base() -> Sample {
    Sample {
        duration_seconds: Some(21.5),
        ..Sample::empty(Timestamp::from_millis(1_700_000_000_000), Trigger::Manual)
    }
}

fn run(output: &RunOutput) -> Sample {
    parse(output, base(), &OPTIONS)
}

fn failure(output: &RunOutput) -> (FailureReason, String) {
    let sample = run(output);
    assert_eq!(sample.outcome, Outcome::Failure);
    assert_eq!(
        sample.download_bytes_per_second, None,
        "no figures on failure"
    );
    (sample.reason.unwrap(), sample.message.unwrap())
}

fn output(stdout: &str, stderr: &str, exit: Exit) -> RunOutput {
    RunOutput {
        stdout: stdout.as_bytes().to_vec(),
        stderr: stderr.as_bytes().to_vec(),
        exit,
    }
}

#[test]
fn full_1_2_result_in_base_units_despite_an_error_line_on_stderr() {
    let sample = run(&fixture!("ok-1.2-with-loaded-latency"));
    assert_eq!(sample.outcome, Outcome::Success);
    assert_eq!(sample.reason, None);
    assert_eq!(sample.message, None);
    assert_eq!(
        sample.duration_seconds,
        Some(21.5),
        "duration is the runner's"
    );
    assert_eq!(sample.download_bytes_per_second, Some(92_727_670.0));
    assert_eq!(sample.upload_bytes_per_second, Some(31_664_073.0));
    assert_eq!(sample.ping_seconds, Some(0.005631));
    assert_eq!(sample.jitter_seconds, Some(0.00048));
    assert_eq!(sample.packet_loss_ratio, Some(0.0));
    assert_eq!(sample.download_latency_seconds, Some(0.008052));
    assert_eq!(sample.upload_latency_seconds, Some(0.007308));
    assert_eq!(sample.downloaded_bytes, Some(1_170_034_775));
    assert_eq!(sample.uploaded_bytes, Some(416_603_849));
    assert_eq!(
        sample.server.as_deref(),
        Some(&Server {
            id: Some(57318),
            name: Some("Zzoomm Plc".into()),
            location: Some("Slough".into()),
            country: Some("United Kingdom".into()),
            host: Some("speedtest.zzoomm.com".into()),
        })
    );
    assert_eq!(sample.isp.as_deref(), Some("Giganet Limited"));
    assert_eq!(
        sample.result_url.as_deref(),
        Some("https://www.speedtest.net/result/c/52186b28-ae1e-406d-a8b8-2a4ffd80f9e5")
    );
    assert_eq!(sample.client, None, "no addresses without --store-ip");
}

#[test]
fn store_ip_keeps_the_client_addresses() {
    let options = ParseOptions {
        store_ip: true,
        ..OPTIONS
    };
    let sample = parse(&fixture!("ok-1.2-with-loaded-latency"), base(), &options);
    assert_eq!(
        sample.client,
        Some(Client {
            internal_ip: Some("192.0.2.3".into()),
            external_ip: Some("203.0.113.3".into()),
            mac: Some("00:00:5E:00:53:03".into()),
        })
    );
}

#[test]
fn pretty_printed_result() {
    let sample = run(&fixture!("ok-1.2-pretty"));
    assert_eq!(sample.outcome, Outcome::Success);
    assert_eq!(sample.download_bytes_per_second, Some(39_924_051.0));
    assert_eq!(sample.ping_seconds, Some(0.01228));
    assert_eq!(sample.upload_latency_seconds, Some(0.019651));
    assert_eq!(sample.isp.as_deref(), Some("Test ISP"));
}

#[test]
fn pre_1_2_result_has_no_loaded_latency_and_snaps_long_floats() {
    let sample = run(&fixture!("ok-pre-1.2-no-loaded-latency"));
    assert_eq!(sample.outcome, Outcome::Success);
    assert_eq!(sample.ping_seconds, Some(0.011217));
    assert_eq!(sample.jitter_seconds, Some(0.000361));
    assert_eq!(sample.download_latency_seconds, None);
    assert_eq!(sample.upload_latency_seconds, None);
    assert_eq!(sample.server.as_ref().and_then(|s| s.id), Some(50179));
}

#[test]
fn missing_packet_loss_stays_unknown() {
    let sample = run(&fixture!("ok-1.2-no-packet-loss"));
    assert_eq!(sample.outcome, Outcome::Success);
    assert_eq!(sample.packet_loss_ratio, None);
    assert_eq!(sample.download_bytes_per_second, Some(116_953_549.0));
    assert_eq!(sample.result_url.as_deref(), Some("REMOVED"));
}

#[test]
fn dns_failure_is_no_connectivity_with_the_cli_words() {
    let (reason, message) = failure(&fixture!("err-config-dns"));
    assert_eq!(reason, FailureReason::NoConnectivity);
    assert!(
        message.contains("Configuration - Couldn't resolve host name (HostNotFoundException)"),
        "{message}"
    );
    assert_eq!(
        message
            .matches("Could not retrieve or read configuration (Configuration)")
            .count(),
        1
    );
}

#[test]
fn pretty_printed_error_log_is_read_too() {
    let (reason, message) = failure(&fixture!("err-config-dns-pretty"));
    assert_eq!(reason, FailureReason::NoConnectivity);
    assert!(
        message.starts_with("Trying to get interface information"),
        "{message}"
    );
    assert!(
        !message.contains('{') && !message.contains("\"level\""),
        "{message}"
    );
}

#[test]
fn unreachable_network_is_no_connectivity() {
    let (reason, message) = failure(&fixture!("err-config-connect"));
    assert_eq!(reason, FailureReason::NoConnectivity);
    assert!(
        message.starts_with("Configuration - Couldn't connect to server (Network is unreachable)")
    );
}

#[test]
fn forbidden_configuration_is_an_exit_failure_with_status() {
    let (reason, message) = failure(&fixture!("err-config-http403"));
    assert_eq!(reason, FailureReason::Exit);
    assert!(
        message.starts_with(
            "exit status 2: Configuration - Cannot retrieve configuration document (403)"
        ),
        "{message}"
    );
}

#[test]
fn limit_reached_is_rate_limited() {
    let (reason, message) = failure(&fixture!("err-rate-limited"));
    assert_eq!(reason, FailureReason::RateLimited);
    assert!(message.starts_with("Limit reached:"), "{message}");
}

#[test]
fn rate_limit_is_recognised_by_words_alone() {
    let out = output(
        "",
        "[2026-11-24 18:53:09.295] [error] Limit reached:\n",
        Exit::Code(1),
    );
    assert_eq!(failure(&out).0, FailureReason::RateLimited);
}

#[test]
fn unknown_option_is_an_exit_failure_quoting_stderr() {
    let (reason, message) = failure(&fixture!("err-unrecognized-option"));
    assert_eq!(reason, FailureReason::Exit);
    assert_eq!(
        message,
        "exit status 255: /usr/bin/speedtest: Unrecognized option: --bogus"
    );
}

/// The Python speedtest-cli (pip installs it as `speedtest`) refuses the Ookla CLI's
/// arguments with argparse's usage error: named as not Ookla's CLI, with the fix.
#[test]
fn python_speedtest_cli_is_named_as_not_ooklas() {
    let out = output(
        "",
        "usage: speedtest [-h] [--no-download] [--no-upload] [--single] [--bytes]\n\
         speedtest: error: unrecognized arguments: --format=json --accept-license \
         --accept-gdpr --progress=no\n",
        Exit::Code(2),
    );
    let (reason, message) = failure(&out);
    assert_eq!(reason, FailureReason::Exit);
    assert!(
        message.starts_with("not Ookla's Speedtest CLI")
            && message.contains("--engine http")
            && message.contains("exit status 2: unrecognized arguments: --format=json"),
        "{message}"
    );
    // Ookla's own refusal of an option stays as it was.
    let (_, message) = failure(&fixture!("err-unrecognized-option"));
    assert!(!message.contains("not Ookla's"), "{message}");
}

#[test]
fn connection_refused_is_no_connectivity() {
    let (reason, message) = failure(&fixture!("err-connection-refused"));
    assert_eq!(reason, FailureReason::NoConnectivity);
    assert_eq!(message, "Error: [111] Connection refused");
}

#[test]
fn error_object_on_stdout_is_read() {
    let (reason, message) = failure(&fixture!("err-error-object"));
    assert_eq!(reason, FailureReason::NoConnectivity);
    assert_eq!(message, "Cannot open socket");
}

#[test]
fn repeated_socket_errors_are_reported_once() {
    let (reason, message) = failure(&fixture!("err-socket-burst"));
    assert_eq!(reason, FailureReason::NoConnectivity);
    assert_eq!(
        message.matches("Cannot read from socket").count(),
        1,
        "{message}"
    );
}

#[test]
fn licence_banner_is_an_exit_failure() {
    let (reason, message) = failure(&fixture!("err-license-not-accepted"));
    assert_eq!(reason, FailureReason::Exit);
    assert!(message.starts_with("exit status 1: You may only use this Speedtest software"));
    assert!(message.len() <= MESSAGE_LIMIT);
}

#[test]
fn garbage_on_exit_0_is_a_parse_failure() {
    let (reason, message) = failure(&output("<html>oops</html>\n", "", Exit::Code(0)));
    assert_eq!(reason, FailureReason::Parse);
    assert_eq!(message, "expected a JSON result, got: <html>oops</html>");
}

#[test]
fn broken_json_says_where_it_broke() {
    for (stdout, error) in [
        (
            r#"{"type":"result","ping":{"latency":"#,
            "EOF while parsing a value at line 1 column 35",
        ),
        (
            r#"{"type":"result","download":{"bandwidth":NaN}}"#,
            "expected value at line 1 column 42",
        ),
    ] {
        let (reason, message) = failure(&output(stdout, "", Exit::Code(0)));
        assert_eq!(reason, FailureReason::Parse);
        let expected = format!("expected a JSON result, got broken JSON ({error}): {{");
        assert!(message.starts_with(&expected), "{message}");
    }
}

#[test]
fn empty_output_on_exit_0_is_a_parse_failure() {
    let (reason, message) = failure(&output("", "", Exit::Code(0)));
    assert_eq!(reason, FailureReason::Parse);
    assert_eq!(message, "speedtest exited 0 but printed no result");
}

#[test]
fn result_without_bandwidth_is_a_parse_failure() {
    let out = output(
        r#"{"type":"result","ping":{"latency":3}}"#,
        "",
        Exit::Code(0),
    );
    assert_eq!(
        failure(&out),
        (
            FailureReason::Parse,
            "the result has no /download/bandwidth".into()
        )
    );
}

#[test]
fn result_with_a_string_for_a_number_is_a_parse_failure() {
    let out = output(
        r#"{"type":"result","ping":{"latency":"fast"},"download":{"bandwidth":1},"upload":{"bandwidth":1}}"#,
        "",
        Exit::Code(0),
    );
    assert_eq!(
        failure(&out),
        (
            FailureReason::Parse,
            "/ping/latency is not a number: \"fast\"".into()
        )
    );
}

fn result_with(download: &str, upload: &str, loss: &str) -> RunOutput {
    let json = format!(
        r#"{{"type":"result","ping":{{"latency":5}},"download":{{"bandwidth":{download}}},"upload":{{"bandwidth":{upload}}},"packetLoss":{loss}}}"#
    );
    output(&json, "", Exit::Code(0))
}

#[test]
fn zero_download_and_upload_is_implausible() {
    let (reason, message) = failure(&result_with("0", "0", "0"));
    assert_eq!(reason, FailureReason::Implausible);
    assert_eq!(message, "download and upload are both 0 B/s");
}

#[test]
fn implausible_names_every_figure_and_the_limit_it_broke() {
    let json = r#"{"type":"result","ping":{"latency":1e300,"jitter":-2},
        "download":{"bandwidth":-5,"latency":{"iqm":60001}},"upload":{"bandwidth":2e300},"packetLoss":150}"#;
    let (reason, message) = failure(&output(json, "", Exit::Code(0)));
    assert_eq!(reason, FailureReason::Implausible);
    assert_eq!(
        message,
        "download -5 B/s is negative; \
         upload 2e300 B/s is above 100000 Mbit/s (12500000000 B/s) (--max-bandwidth); \
         ping 1e297 s is above 60 s; \
         jitter -0.002 s is negative; \
         download latency 60.001 s is above 60 s; \
         packet loss ratio 1.5 is above 1"
    );
}

#[test]
fn latency_up_to_a_minute_is_plausible() {
    let json = r#"{"type":"result","ping":{"latency":60000},"download":{"bandwidth":5},"upload":{"bandwidth":5}}"#;
    assert_eq!(
        run(&output(json, "", Exit::Code(0))).ping_seconds,
        Some(60.0)
    );
}

#[test]
fn negative_bandwidth_loss_over_100_and_above_ceiling_are_implausible() {
    for (down, up, loss) in [("-1", "5", "0"), ("5", "5", "150"), ("2e10", "5", "0")] {
        assert_eq!(
            failure(&result_with(down, up, loss)).0,
            FailureReason::Implausible,
            "{down} {up} {loss}"
        );
    }
    let fine = run(&result_with("0", "5", "1.5"));
    assert_eq!(
        fine.outcome,
        Outcome::Success,
        "only one direction zero is possible"
    );
    assert_eq!(fine.packet_loss_ratio, Some(0.015));
}

#[test]
fn result_with_non_zero_exit_is_not_trusted() {
    let mut out = fixture!("ok-1.2-with-loaded-latency");
    out.exit = Exit::Code(3);
    let (reason, message) = failure(&out);
    assert_eq!(reason, FailureReason::NoConnectivity, "{message}");
}

#[test]
fn signal_death_names_the_signal() {
    let (reason, message) = failure(&output("", "", Exit::Signal(11)));
    assert_eq!(reason, FailureReason::Exit);
    assert_eq!(message, "killed by signal 11");
}

#[test]
fn long_messages_are_cut_on_a_character_boundary() {
    let long = "é".repeat(400);
    let cut = truncate(&long);
    assert!(cut.ends_with('…'));
    assert!(
        cut.len() <= MESSAGE_LIMIT && cut.len() > MESSAGE_LIMIT - 2,
        "{}",
        cut.len()
    );
}

#[test]
fn a_pretty_printed_error_log_alone_gives_its_message() {
    let stderr = "{\n    \"type\": \"log\",\n    \"message\": \"Configuration - Could not retrieve or read configuration (ConfigurationError)\",\n    \"level\": \"error\"\n}\n";
    let (reason, message) = failure(&output("", stderr, Exit::Code(2)));
    assert_eq!(reason, FailureReason::Exit);
    assert_eq!(
        message,
        "exit status 2: Configuration - Could not retrieve or read configuration (ConfigurationError)"
    );
}

/// Every recorded or publicly reported CLI failure (`tests/fixtures/README.md` says where each
/// was seen): the reason it is stored with and the message, whole up to the limit.
#[test]
fn every_known_cli_failure_is_its_reason_with_its_whole_message() {
    use FailureReason::{Exit as ExitReason, NoConnectivity, RateLimited};
    let table: [(&str, RunOutput, FailureReason, &str); 19] = [
        (
            "err-config-connect",
            fixture!("err-config-connect"),
            NoConnectivity,
            "Configuration - Couldn't connect to server (Network is unreachable); \
             Configuration - Cannot retrieve configuration document (0); \
             ConfigurationError - Could not retrieve or read configuration (Configuration); \
             Configuration - Could not retrieve or read configuration (ConfigurationError)",
        ),
        (
            "err-config-dns",
            fixture!("err-config-dns"),
            NoConnectivity,
            "Trying to get interface information on non-initialized socket.; \
             Configuration - Couldn't resolve host name (HostNotFoundException); \
             Configuration - Cannot retrieve configuration document (0); \
             ConfigurationError - Could not retrieve or read configuration (Configuration); \
             Configuration - Could not …",
        ),
        (
            "err-config-dns-pretty",
            fixture!("err-config-dns-pretty"),
            NoConnectivity,
            "Trying to get interface information on non-initialized socket.; \
             Configuration - Couldn't resolve host name (HostNotFoundException); \
             Configuration - Cannot retrieve configuration document (0); \
             ConfigurationError - Could not retrieve or read configuration (Configuration); \
             Configuration - Could not …",
        ),
        (
            "err-config-http403",
            fixture!("err-config-http403"),
            ExitReason,
            "exit status 2: Configuration - Cannot retrieve configuration document (403); \
             ConfigurationError - Could not retrieve or read configuration (Configuration); \
             Configuration - Could not retrieve or read configuration (ConfigurationError)",
        ),
        (
            "err-config-ssl",
            fixture!("err-config-ssl"),
            NoConnectivity,
            "Configuration - SSL connect error (UnknownException); \
             Configuration - Cannot retrieve configuration document (0); \
             ConfigurationError - Could not retrieve or read configuration (Configuration); \
             Configuration - Could not retrieve or read configuration (ConfigurationError)",
        ),
        (
            "err-connection-refused",
            fixture!("err-connection-refused"),
            NoConnectivity,
            "Error: [111] Connection refused",
        ),
        (
            "err-error-object",
            fixture!("err-error-object"),
            NoConnectivity,
            "Cannot open socket",
        ),
        (
            "err-timeout-in-connect",
            fixture!("err-timeout-in-connect"),
            NoConnectivity,
            "Error: [0] Timeout occurred in connect.",
        ),
        (
            "err-open-socket-timeout",
            fixture!("err-open-socket-timeout"),
            NoConnectivity,
            "Error: [110] Cannot open socket: Timeout occurred in connect.; \
             Error: [11] Cannot read: Resource temporarily unavailable",
        ),
        (
            "err-read-zero-bytes",
            fixture!("err-read-zero-bytes"),
            NoConnectivity,
            "Error: [0] Cannot read from socket (0 bytes read)",
        ),
        (
            "err-socket-burst",
            fixture!("err-socket-burst"),
            NoConnectivity,
            "Error: [0] Cannot read from socket:; Error: [0] Cannot open socket",
        ),
        (
            "err-cannot-write",
            fixture!("err-cannot-write"),
            NoConnectivity,
            "Cannot write:",
        ),
        (
            "err-resolve-cancelled",
            fixture!("err-resolve-cancelled"),
            NoConnectivity,
            "Failed to resolve host name. Cancelling test suite.; \
             Host resolve failed: Connection refused",
        ),
        (
            "err-no-working-server",
            fixture!("err-no-working-server"),
            NoConnectivity,
            "Server Selection - Failed to find a working test server. (NoServers)",
        ),
        (
            "err-no-servers-defined",
            fixture!("err-no-servers-defined"),
            ExitReason,
            "exit status 2: Configuration - No servers defined (NoServersException)",
        ),
        (
            "err-rate-limited",
            fixture!("err-rate-limited"),
            RateLimited,
            "Limit reached: Speedtest CLI. Too many requests received. To maintain a fair and \
             stable environment, please review and adjust the frequency of your requests.",
        ),
        (
            "err-rate-limited-html",
            fixture!("err-rate-limited-html"),
            RateLimited,
            "Limit reached: <html> <head><title>429 Too Many Requests</title></head> <body> \
             <center><h1>429 Too Many Requests</h1></center> <hr><center>openresty</center> \
             </body> </html>",
        ),
        (
            "err-license-not-accepted",
            fixture!("err-license-not-accepted"),
            ExitReason,
            "exit status 1: You may only use this Speedtest software and information generated \
             from it for personal, non-commercial use, through a command line interface on a \
             personal computer. Your use of this software is subject to the End User License \
             Agreement, Terms of Use and Privacy Policy at these URL…",
        ),
        (
            "err-unrecognized-option",
            fixture!("err-unrecognized-option"),
            ExitReason,
            "exit status 255: /usr/bin/speedtest: Unrecognized option: --bogus",
        ),
    ];
    let on_disk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".rc")
                .filter(|stem| stem.starts_with("err-"))
                .map(str::to_owned)
        })
        .count();
    assert_eq!(table.len(), on_disk, "one row per err-* fixture");
    for (name, output, reason, message) in table {
        assert_eq!(failure(&output), (reason, message.to_owned()), "{name}");
    }
}

#[test]
fn a_log_line_continues_until_the_next_log_line_or_json() {
    let stderr = "[2026-11-30 05:05:20.246] [error] Limit reached:\n\
                  first line\n\n   second line  \n\
                  [2026-11-30 05:05:20.300] [info] not part of it\n\
                  after an info line\n\
                  [error] Cannot write: \n\
                  {\"type\":\"log\",\"message\":\"Cannot open socket\",\"level\":\"error\"}\n\
                  after JSON\n";
    let (reason, message) = failure(&output("", stderr, Exit::Code(2)));
    assert_eq!(reason, FailureReason::RateLimited);
    assert_eq!(
        message,
        "Limit reached: first line second line; Cannot write:; Cannot open socket"
    );
}

#[test]
fn a_long_message_is_cut_at_the_limit_not_at_a_line_or_colon() {
    let body = "é".repeat(200);
    let stderr = format!("[2026-11-30 05:05:20.246] [error] Limit reached:\n{body}\n");
    let (reason, message) = failure(&output("", &stderr, Exit::Code(173)));
    assert_eq!(reason, FailureReason::RateLimited);
    let kept = message.strip_suffix('…').expect("marked as cut");
    assert!(kept.starts_with("Limit reached: éé"), "{message}");
    // The whole message, ellipsis included, is at most the limit, and cut only at it.
    assert!(
        message.len() <= MESSAGE_LIMIT && message.len() >= MESSAGE_LIMIT - 1,
        "{}",
        message.len()
    );
}

#[test]
fn an_error_the_cli_exits_0_on_is_its_reason_not_a_parse_failure() {
    let timeout =
        r#"{"type":"log","message":"Error: [0] Timeout occurred in connect.","level":"error"}"#;
    assert_eq!(
        failure(&output("", timeout, Exit::Code(0))),
        (
            FailureReason::NoConnectivity,
            "Error: [0] Timeout occurred in connect.".into()
        )
    );
    let unknown = r#"{"type":"log","message":"Configuration - No servers defined (NoServersException)","level":"error"}"#;
    assert_eq!(
        failure(&output("", unknown, Exit::Code(0))).0,
        FailureReason::Exit
    );
}

#[test]
fn a_byte_count_that_is_not_a_whole_number_of_bytes_is_a_parse_failure() {
    let result = |bytes: &str| {
        format!(
            "{{\"type\":\"result\",\"ping\":{{\"latency\":10.0}},\"download\":{{\"bandwidth\":1000,\"bytes\":{bytes}}},\"upload\":{{\"bandwidth\":1000,\"bytes\":5}}}}"
        )
    };
    for bytes in ["-5", "1e23", "2.5", "\"many\""] {
        let (reason, message) = failure(&output(&result(bytes), "", Exit::Code(0)));
        assert_eq!(reason, FailureReason::Parse, "{bytes}");
        assert!(
            message.contains("/download/bytes is not a byte count"),
            "{bytes}: {message}"
        );
    }
}

/// Issue 11: a byte count no test could move was stored as a success, and then skipped every
/// scheduled test for the month under `--data-budget`.
#[test]
fn byte_counts_no_test_could_move_are_implausible() {
    let json = r#"{"type":"result","ping":{"latency":5},"download":{"bandwidth":5,"bytes":18446744073709551615},"upload":{"bandwidth":5,"bytes":1000}}"#;
    let (reason, message) = failure(&output(json, "", Exit::Code(0)));
    assert_eq!(reason, FailureReason::Implausible);
    assert_eq!(
        message,
        "downloaded bytes 18446744073709551615 B is above 45000000000000 B (--max-bandwidth × 3600 s)"
    );
    let json = r#"{"type":"result","ping":{"latency":5},"download":{"bandwidth":5,"bytes":45000000000000},"upload":{"bandwidth":5,"bytes":1000}}"#;
    let sample = run(&output(json, "", Exit::Code(0)));
    assert_eq!(sample.outcome, Outcome::Success, "{:?}", sample.message);
    assert_eq!(sample.downloaded_bytes, Some(45_000_000_000_000));
}

/// Issue 11: names of any length were stored whole; now they are cut, the measurement kept,
/// and a result URL too long to be real is left out.
#[test]
fn long_names_are_cut_and_a_long_result_url_left_out() {
    let isp = "I".repeat(1_200_000);
    let name = "é".repeat(300);
    let url = format!("https://www.speedtest.net/result/c/{}", "0".repeat(2048));
    let json = format!(
        r#"{{"type":"result","ping":{{"latency":5}},"download":{{"bandwidth":5}},"upload":{{"bandwidth":5}},
        "isp":"{isp}","server":{{"id":1,"name":"{name}","location":"{name}","country":"{name}","host":"{isp}"}},
        "result":{{"url":"{url}"}}}}"#
    );
    let sample = run(&output(&json, "", Exit::Code(0)));
    assert_eq!(sample.outcome, Outcome::Success, "{:?}", sample.message);
    let isp = sample.isp.as_deref().unwrap();
    assert!(
        isp.len() <= 256 && isp.len() >= 254 && isp.ends_with('…'),
        "{isp}"
    );
    let server = sample.server.as_deref().unwrap();
    for text in [
        &server.name,
        &server.location,
        &server.country,
        &server.host,
    ] {
        let text = text.as_deref().unwrap();
        assert!(
            text.len() <= 256 && text.len() >= 253 && text.ends_with('…'),
            "{text}"
        );
    }
    assert_eq!(sample.result_url, None);
    assert_eq!(sample.check_plausible(&OPTIONS.limits()), Ok(()));
    let short = r#"{"type":"result","ping":{"latency":5},"download":{"bandwidth":5},"upload":{"bandwidth":5},"isp":"Example","result":{"url":"https://www.speedtest.net/result/c/1"}}"#;
    let sample = run(&output(short, "", Exit::Code(0)));
    assert_eq!(sample.isp.as_deref(), Some("Example"));
    assert_eq!(
        sample.result_url.as_deref(),
        Some("https://www.speedtest.net/result/c/1")
    );
}

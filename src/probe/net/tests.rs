//! Loopback tests of the probes (the namespaced ones, with real links, are in
//! `tests/probe_net.rs`).

use super::*;
use crate::probe::TargetKind;
use std::net::Ipv4Addr;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const PATIENCE: Duration = Duration::from_secs(5);

fn target(address: IpAddr, method: ProbeMethod) -> Target {
    Target {
        kind: TargetKind::Public,
        address,
        method,
    }
}

#[tokio::test]
async fn tcp_answers_from_a_listening_port_and_a_closed_one() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let open = listener.local_addr().expect("address").port();
    // A port that was bound and released: nobody listens, the kernel answers RST.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let prober = Prober::new(ProbeMethod::TcpConnect { port: 0 });
    for port in [open, closed] {
        let rtt = prober
            .probe(
                &target(LOOPBACK, ProbeMethod::TcpConnect { port }),
                PATIENCE,
            )
            .await
            .expect("no local error");
        assert!(
            rtt.is_some_and(|rtt| rtt < PATIENCE),
            "port {port}: {rtt:?}"
        );
    }
}

#[tokio::test]
async fn tcp_port_zero_takes_the_probers_port_or_is_an_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let per_target = target(LOOPBACK, ProbeMethod::TcpConnect { port: 0 });
    let with_port = Prober::new(ProbeMethod::TcpConnect { port });
    assert!(
        with_port
            .probe(&per_target, PATIENCE)
            .await
            .expect("probe")
            .is_some()
    );
    let without = Prober::new(ProbeMethod::TcpConnect { port: 0 });
    let err = without
        .probe(&per_target, PATIENCE)
        .await
        .expect_err("no port anywhere");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
}

#[tokio::test]
async fn the_detected_method_answers_on_loopback_many_at_once() {
    let detection = detect();
    assert!(!detection.reason.is_empty());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let method = match detection.method {
        ProbeMethod::TcpConnect { .. } => ProbeMethod::TcpConnect {
            port: listener.local_addr().expect("address").port(),
        },
        icmp => icmp,
    };
    let prober = std::sync::Arc::new(Prober::new(method));
    // Concurrent probes through one prober: each must take its own reply.
    let probes: Vec<_> = (0..16)
        .map(|_| {
            let prober = prober.clone();
            tokio::spawn(async move { prober.probe(&target(LOOPBACK, method), PATIENCE).await })
        })
        .collect();
    for probe in probes {
        let rtt = probe.await.expect("no panic").expect("no local error");
        assert!(
            rtt.is_some(),
            "{method} to 127.0.0.1 lost ({})",
            detection.reason
        );
    }
}

#[test]
fn groups_come_from_gid_and_groups_lines() {
    let status = "Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t1000\t1000\t1000\n\
                  Groups:\t4 24 1000 27\nCapEff:\t0000000000002000\n";
    assert_eq!(process_groups(status), vec![1000, 4, 24, 27]);
    assert!(has_cap_net_raw(status));
    assert!(!has_cap_net_raw("CapEff:\t0000000000001000\n"));
    assert!(has_cap_net_raw("CapEff:\t000001fffeffffff\n"));
    assert!(!has_cap_net_raw("CapEff:\tnot hex\n"));
    assert!(!has_cap_net_raw(""));
    assert_eq!(process_groups("Gid:\t0\t0\t0\t0\nGroups:\n"), vec![0]);
}

#[test]
fn unreachable_errors_are_losses_others_errors() {
    for code in [libc::ENETUNREACH, libc::EHOSTUNREACH, libc::ECONNREFUSED] {
        assert!(matches!(
            lost_or(io::Error::from_raw_os_error(code)),
            Ok(None)
        ));
    }
    for code in [libc::EAFNOSUPPORT, libc::EACCES, libc::EPERM] {
        assert!(lost_or(io::Error::from_raw_os_error(code)).is_err());
    }
}

#[test]
fn this_machines_gateway_reads_without_error() {
    // The contents depend on the machine; the files must be found and parse.
    let gateway = default_gateway().expect("/proc/net/route readable");
    if let Some(gateway) = gateway {
        assert!(!gateway.is_unspecified());
    }
}

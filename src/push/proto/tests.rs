//! Unit tests of the remote write codec.

use super::*;

#[test]
fn a_request_round_trips() {
    let request = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![Label {
                name: "__name__".into(),
                value: "speedtest_up".into(),
            }],
            samples: vec![ProtoSample {
                value: 1.0,
                timestamp: 1_795_546_073_292,
            }],
        }],
    };
    assert_eq!(decode(&encode(&request)).unwrap(), request);
}

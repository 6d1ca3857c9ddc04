//! The Prometheus remote write 1.0 wire format: the `WriteRequest` protobuf messages (only the
//! fields 1.0 needs, hand-declared with prost's derive) and the body codec, protobuf then
//! snappy in its raw (block) format.
//!
//! A request is sent with `Content-Type: application/x-protobuf`, `Content-Encoding: snappy`
//! and `X-Prometheus-Remote-Write-Version: 0.1.0` ([`CONTENT_TYPE`], [`CONTENT_ENCODING`],
//! [`VERSION_HEADER`], [`VERSION`]).

use prost::Message;

/// `Content-Type` of a remote write 1.0 body.
pub(crate) const CONTENT_TYPE: &str = "application/x-protobuf";
/// `Content-Encoding` of a remote write 1.0 body (snappy, raw block format).
pub(crate) const CONTENT_ENCODING: &str = "snappy";
/// The header naming the protocol version.
pub(crate) const VERSION_HEADER: &str = "X-Prometheus-Remote-Write-Version";
/// Remote write 1.0's version string.
pub(crate) const VERSION: &str = "0.1.0";
/// The most bytes [`decode`] decompresses a body to (32 MiB); a body that says it is larger is
/// refused before anything is allocated for it.
pub(crate) const MAX_DECODED_BYTES: usize = 32 << 20;

/// `prometheus.WriteRequest`: the series of one push.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// One entry per label set; Prometheus wants each series' points in time order.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`: one label set and its points.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Sorted by name, `__name__` (the metric's name) first.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<ProtoSample>,
}

/// `prometheus.Label`: a name and its value.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`: one point, its value and its time in ms since the Unix epoch.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoSample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Why a body is not a remote write 1.0 request.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("the body is not snappy (raw block format): {0}")]
    Snappy(#[from] snap::Error),
    #[error(
        "the body decompresses to {len} bytes, more than the {max} accepted: send fewer series per request"
    )]
    TooLarge { len: usize, max: usize },
    #[error("the body is not a protobuf WriteRequest: {0}")]
    Protobuf(#[from] prost::DecodeError),
}

/// The body of `request`: its protobuf encoding, compressed with snappy's raw (block) format.
///
/// Snappy cannot frame more than 4 GiB (its length header is 32 bits); the pusher's requests
/// hold at most a few hundred points (some kilobytes). A protobuf past that limit gives an
/// empty body, which every receiver refuses as malformed (400), rather than a panic.
pub fn encode(request: &WriteRequest) -> Vec<u8> {
    let protobuf = request.encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&protobuf)
        .unwrap_or_default()
}

/// The request in `body` (snappy raw, then protobuf), for tests and fake receivers. The
/// decompressed length the body declares is checked against [`MAX_DECODED_BYTES`] before
/// anything is decompressed; truncated or foreign bytes are an error, never a panic.
pub fn decode(body: &[u8]) -> Result<WriteRequest, ProtoError> {
    let len = snap::raw::decompress_len(body)?;
    if len > MAX_DECODED_BYTES {
        return Err(ProtoError::TooLarge {
            len,
            max: MAX_DECODED_BYTES,
        });
    }
    let protobuf = snap::raw::Decoder::new().decompress_vec(body)?;
    Ok(WriteRequest::decode(protobuf.as_slice())?)
}

#[cfg(test)]
mod tests;

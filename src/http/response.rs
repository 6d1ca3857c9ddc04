//! Building responses: JSON bodies with their headers, and errors as `{"error": "…"}`.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

/// Whole bodies and streamed ones (JSON pages, CSV exports) alike; a streamed body fails (and
/// the connection is cut) when the store cannot be read part way through.
pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A request that cannot be answered as asked; becomes a JSON error response.
#[derive(Debug, PartialEq)]
pub struct HttpError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl HttpError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        HttpError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        HttpError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// Our fault, not the client's (the store failed): logged, and answered as 503 so that
    /// clients and load balancers retry rather than give up.
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        HttpError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
        }
    }

    /// This request's answer as `{"error": "…"}` with its status.
    pub(crate) fn into_response(self) -> Response<Body> {
        #[derive(Serialize)]
        struct ErrorBody<'a> {
            error: &'a str,
        }
        let body = to_json(&ErrorBody {
            error: &self.message,
        })
        .unwrap_or_else(|_| Bytes::from_static(b"{\"error\":\"internal error\"}\n"));
        json_body(self.status, body)
    }
}

/// Our own overload (every store reader busy, or the queue waited on too long): 503, so that
/// clients retry later.
pub(crate) fn overloaded(err: crate::daemon::worker::WorkerError) -> HttpError {
    static BUSY: crate::logging::Throttle =
        crate::logging::Throttle::new(super::LOG_LINES_PER_MINUTE);
    if let Some(left_out) = BUSY.admit() {
        tracing::warn!(%err, left_out, "a request was turned away");
    }
    HttpError::unavailable(format!("the server is busy: {err}"))
}

/// A JSON response (which origins may read it is the route's to say: `http::Route`).
pub(crate) fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    match to_json(value) {
        Ok(body) => json_body(status, body),
        Err(err) => err.into_response(),
    }
}

/// `value` as a JSON document ending in a newline.
pub(crate) fn to_json(value: &impl Serialize) -> Result<Bytes, HttpError> {
    match serde_json::to_vec(value) {
        Ok(mut body) => {
            body.push(b'\n');
            Ok(Bytes::from(body))
        }
        Err(err) => {
            tracing::error!(%err, "cannot serialise a response");
            Err(HttpError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: "internal error while writing the response".into(),
            })
        }
    }
}

/// A response with a JSON document made earlier.
pub(crate) fn json_body(status: StatusCode, body: Bytes) -> Response<Body> {
    respond(status, "application/json", whole(body))
}

pub(crate) fn with_body(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    respond(status, content_type, whole(body.into()))
}

/// A response with its status and content type.
pub(crate) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: Body,
) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Lets a browser page on another origin read the response, as the original app's JSON was.
pub(crate) fn readable_anywhere(mut response: Response<Body>) -> Response<Body> {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// A body held whole in memory.
pub(crate) fn whole(body: Bytes) -> Body {
    Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync()
}

//! The ceiling for `bench/`: a bare hyper server answering "hello" on the same runtime setup
//! as `serve` (two worker threads, HTTP/1.1), so our endpoints can be compared with it.
//!
//! `cargo run --release --example hello_server -- 127.0.0.1:0` prints the bound address; a
//! second argument, a number of bytes, makes the body that long (lines of "hello"), so an
//! endpoint with a larger answer, such as `/metrics`, can be compared with a ceiling that
//! writes, and makes the client read, as many bytes.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let body = match args.next() {
        None => Bytes::from_static(b"hello\n"),
        Some(size) => {
            let size = size.parse().map_err(|err| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("body size {size:?}: {err}"),
                )
            })?;
            Bytes::from(b"hello\n".repeat(size / 6 + 1)[..size].to_vec())
        }
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(async {
            let listener = TcpListener::bind(&address).await?;
            println!("listening on http://{}", listener.local_addr()?);
            loop {
                let (stream, _) = listener.accept().await?;
                let body = body.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_: Request<hyper::body::Incoming>| {
                        let body = body.clone();
                        async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
}

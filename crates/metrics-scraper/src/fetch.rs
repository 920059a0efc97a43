//! One endpoint's HTTP/1.1 keep-alive connection and a size-capped GET over it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_LENGTH, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::ScrapeErrorKind;

/// A reusable connection to one `host:port`, reopened after any failure.
#[derive(Debug)]
pub(crate) struct Fetcher {
    target: Arc<str>,
    host: Arc<str>,
    port: u16,
    path: Arc<str>,
    max_body: usize,
    sender: Option<SendRequest<Empty<Bytes>>>,
}

impl Fetcher {
    pub(crate) fn new(
        target: Arc<str>,
        host: Arc<str>,
        port: u16,
        path: Arc<str>,
        max_body: usize,
    ) -> Self {
        Self {
            target,
            host,
            port,
            path,
            max_body,
            sender: None,
        }
    }

    /// GETs the metrics path into `buf` (cleared first) within `timeout`. On any error the
    /// connection is dropped, so the next call starts on a fresh one.
    pub(crate) async fn fetch(
        &mut self,
        buf: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<(), ScrapeErrorKind> {
        buf.clear();
        let result = match tokio::time::timeout(timeout, self.fetch_inner(buf)).await {
            Ok(r) => r,
            Err(_) => Err(ScrapeErrorKind::Timeout { after: timeout }),
        };
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn fetch_inner(&mut self, buf: &mut Vec<u8>) -> Result<(), ScrapeErrorKind> {
        let request = Request::get(&*self.path)
            .header(HOST, &*self.target)
            .body(Empty::<Bytes>::new())
            .map_err(|_| ScrapeErrorKind::InvalidTarget {
                target: self.target.clone(),
                path: self.path.clone(),
            })?;
        let sender = self.ready_sender().await?;
        let response =
            sender
                .send_request(request)
                .await
                .map_err(|e| ScrapeErrorKind::Transport {
                    source: Arc::new(e),
                })?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(ScrapeErrorKind::Status {
                status: status.as_u16(),
            });
        }
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(len) = declared {
            if len > self.max_body as u64 {
                return Err(ScrapeErrorKind::BodyTooLarge {
                    limit: self.max_body,
                });
            }
            buf.reserve(usize::try_from(len).unwrap_or(0));
        }
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ScrapeErrorKind::Transport {
                source: Arc::new(e),
            })?;
            if let Ok(data) = frame.into_data() {
                if buf.len().saturating_add(data.len()) > self.max_body {
                    return Err(ScrapeErrorKind::BodyTooLarge {
                        limit: self.max_body,
                    });
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(())
    }

    async fn ready_sender(&mut self) -> Result<&mut SendRequest<Empty<Bytes>>, ScrapeErrorKind> {
        if let Some(sender) = &mut self.sender {
            // An idle connection the server closed shows up here, not as a failed request.
            if sender.ready().await.is_err() {
                self.sender = None;
            }
        }
        let sender = match self.sender.take() {
            Some(sender) => sender,
            None => self.connect().await?,
        };
        Ok(self.sender.insert(sender))
    }

    async fn connect(&self) -> Result<SendRequest<Empty<Bytes>>, ScrapeErrorKind> {
        let connect_error = |e: std::io::Error| ScrapeErrorKind::Connect {
            target: self.target.clone(),
            source: Arc::new(e),
        };
        let stream = TcpStream::connect((&*self.host, self.port))
            .await
            .map_err(connect_error)?;
        // Best effort: a small GET should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ScrapeErrorKind::Transport {
                source: Arc::new(e),
            })?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the peer closes; errors surface on the
            // sender's side.
            let _ = connection.await;
        });
        sender
            .ready()
            .await
            .map_err(|e| ScrapeErrorKind::Transport {
                source: Arc::new(e),
            })?;
        Ok(sender)
    }
}

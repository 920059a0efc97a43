//! One endpoint's HTTP/1.1 keep-alive connection and a size-capped GET over it, driven
//! inside the endpoint's own task: the request is written and the response read straight
//! into the poll's reusable buffer, framed by [`http1`](crate::http1).

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::ScrapeErrorKind;
use crate::http1::{ChunkedDecoder, Framing, HttpError, MAX_HEAD_BYTES, ResponseHead};

/// The smallest free space offered to a read.
const MIN_READ: usize = 16 << 10;

/// A reusable connection to one `host:port`, reopened after any failure.
#[derive(Debug)]
pub(crate) struct Fetcher {
    target: Arc<str>,
    host: Arc<str>,
    port: u16,
    max_body: usize,
    /// The whole GET request, built once.
    request: Box<[u8]>,
    stream: Option<TcpStream>,
    /// The previous response's length: the next read is sized for it.
    last_len: usize,
}

/// Why an exchange failed, and whether it failed before any response byte arrived (on a
/// reused connection that means the server had closed it while idle: retry once).
struct Failure {
    error: ScrapeErrorKind,
    before_response: bool,
}

impl From<ScrapeErrorKind> for Failure {
    fn from(error: ScrapeErrorKind) -> Self {
        Failure {
            error,
            before_response: false,
        }
    }
}

impl From<HttpError> for Failure {
    fn from(source: HttpError) -> Self {
        ScrapeErrorKind::Http { source }.into()
    }
}

fn transport(e: std::io::Error) -> ScrapeErrorKind {
    ScrapeErrorKind::Transport {
        source: Arc::new(e),
    }
}

impl Fetcher {
    pub(crate) fn new(
        target: Arc<str>,
        host: Arc<str>,
        port: u16,
        path: &str,
        max_body: usize,
    ) -> Self {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {target}\r\nAccept: text/plain;version=0.0.4\r\n\
             User-Agent: pointsman-scraper\r\n\r\n"
        );
        Self {
            target,
            host,
            port,
            max_body,
            request: request.into_bytes().into_boxed_slice(),
            stream: None,
            last_len: 0,
        }
    }

    /// GETs the metrics path into `buf` (cleared first) within `timeout` and returns where
    /// the body lies in it. On any error the connection is dropped, so the next call starts
    /// on a fresh one.
    pub(crate) async fn fetch(
        &mut self,
        buf: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<Range<usize>, ScrapeErrorKind> {
        let result = match tokio::time::timeout(timeout, self.fetch_inner(buf)).await {
            Ok(r) => r,
            Err(_) => Err(ScrapeErrorKind::Timeout { after: timeout }),
        };
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn fetch_inner(&mut self, buf: &mut Vec<u8>) -> Result<Range<usize>, ScrapeErrorKind> {
        let reused = self.stream.is_some();
        match self.exchange(buf).await {
            Ok(body) => Ok(body),
            Err(failure) if reused && failure.before_response => {
                self.stream = None;
                self.exchange(buf).await.map_err(|f| f.error)
            }
            Err(failure) => Err(failure.error),
        }
    }

    async fn exchange(&mut self, buf: &mut Vec<u8>) -> Result<Range<usize>, Failure> {
        buf.clear();
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => self.stream.insert(self.connect().await?),
        };
        let stale = |e: std::io::Error| Failure {
            error: transport(e),
            before_response: true,
        };
        stream.write_all(&self.request).await.map_err(stale)?;
        buf.reserve(self.last_len.saturating_add(1024).max(MIN_READ));

        // The head, skipping interim (1xx) responses.
        let mut start = 0;
        let head = loop {
            match ResponseHead::parse(buf.get(start..).unwrap_or_default())? {
                Some(head) if (100..200).contains(&head.status) => start += head.len,
                Some(head) => break head,
                None => {
                    if read_more(stream, buf).await.map_err(stale)? == 0 {
                        return Err(Failure {
                            error: ScrapeErrorKind::Http {
                                source: HttpError::ClosedInHead { read: buf.len() },
                            },
                            before_response: buf.is_empty(),
                        });
                    }
                }
            }
        };
        if head.status != 200 {
            // The connection is dropped by `fetch`: no need to read the body.
            return Err(ScrapeErrorKind::Status {
                status: head.status,
            }
            .into());
        }
        let body_start = start + head.len;
        let too_large = ScrapeErrorKind::BodyTooLarge {
            limit: self.max_body,
        };
        let received = |buf: &Vec<u8>| buf.len() - body_start;
        let body = match head.framing {
            Framing::Length(n) => {
                if n > self.max_body {
                    return Err(too_large.into());
                }
                buf.reserve((body_start + n).saturating_sub(buf.len()));
                while buf.len() < body_start + n {
                    if read_more(stream, buf).await.map_err(transport)? == 0 {
                        return Err(HttpError::Closed {
                            read: received(buf),
                            expected: Some(n),
                        }
                        .into());
                    }
                }
                if buf.len() > body_start + n {
                    return Err(HttpError::TrailingBytes(buf.len() - body_start - n).into());
                }
                body_start..body_start + n
            }
            Framing::Chunked => {
                let raw_limit = self
                    .max_body
                    .saturating_mul(2)
                    .saturating_add(MAX_HEAD_BYTES);
                let mut decoder = ChunkedDecoder::new();
                loop {
                    let body = buf.get_mut(body_start..).unwrap_or_default();
                    if let Some((decoded, encoded)) = decoder.decode(body)? {
                        if encoded != body.len() {
                            return Err(HttpError::TrailingBytes(body.len() - encoded).into());
                        }
                        if decoded > self.max_body {
                            return Err(too_large.into());
                        }
                        buf.truncate(body_start + decoded);
                        break body_start..body_start + decoded;
                    }
                    if decoder.decoded() > self.max_body || received(buf) > raw_limit {
                        return Err(too_large.into());
                    }
                    if read_more(stream, buf).await.map_err(transport)? == 0 {
                        return Err(HttpError::Closed {
                            read: decoder.decoded(),
                            expected: None,
                        }
                        .into());
                    }
                }
            }
            Framing::Close => {
                while read_more(stream, buf).await.map_err(transport)? > 0 {
                    if received(buf) > self.max_body {
                        return Err(too_large.into());
                    }
                }
                body_start..buf.len()
            }
        };
        if !head.keep_alive {
            self.stream = None;
        }
        self.last_len = buf.len();
        Ok(body)
    }

    async fn connect(&self) -> Result<TcpStream, ScrapeErrorKind> {
        let stream = TcpStream::connect((&*self.host, self.port))
            .await
            .map_err(|e| ScrapeErrorKind::Connect {
                target: self.target.clone(),
                source: Arc::new(e),
            })?;
        // Best effort: a small GET should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

/// Reads once into `buf`'s spare capacity, growing it when little is left.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < MIN_READ / 4 {
        buf.reserve(buf.len().max(MIN_READ));
    }
    stream.read_buf(buf).await
}

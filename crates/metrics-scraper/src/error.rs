//! Errors of one scrape and of the scraper's configuration.
//!
//! A [`ScrapeError`] names the endpoint and says what failed ([`ScrapeErrorKind`]) and whether
//! the failure is [transient](ScrapeError::is_transient) (a timeout, a refused connection, a
//! 5xx: the next poll may well succeed) or permanent (a 404, a body that is not Prometheus
//! text, an unknown engine: polling again as is will fail the same way until the server or
//! the configuration changes). Either way the scraper keeps polling, counts the error by its
//! [`ErrorKind`] and leaves the endpoint's metrics as they were, so they age and become stale.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::SignalSet;
use crate::exposition::ParseError;

/// A failed scrape of one endpoint.
///
/// ```
/// use pointsman_scraper::error::{ErrorKind, ScrapeError, ScrapeErrorKind};
///
/// let e = ScrapeError::new("vllm-0-rank-0", ScrapeErrorKind::Status { status: 503 });
/// assert_eq!(e.to_string(), "scraping vllm-0-rank-0: HTTP status 503, expected 200 (transient)");
/// assert!(e.is_transient());
/// assert_eq!(e.kind(), ErrorKind::Status);
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error("scraping {endpoint}: {detail} ({})", if self.is_transient() { "transient" } else { "permanent" })]
pub struct ScrapeError {
    endpoint: Arc<str>,
    #[source]
    detail: ScrapeErrorKind,
}

impl ScrapeError {
    /// An error of `endpoint`.
    pub fn new(endpoint: impl Into<Arc<str>>, detail: ScrapeErrorKind) -> Self {
        Self {
            endpoint: endpoint.into(),
            detail,
        }
    }

    /// The endpoint's name.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// What failed.
    pub fn detail(&self) -> &ScrapeErrorKind {
        &self.detail
    }

    /// The category the error is counted under.
    pub fn kind(&self) -> ErrorKind {
        self.detail.kind()
    }

    /// Whether the next poll may succeed without any change (timeouts, connection failures,
    /// resets, 5xx and 429 statuses).
    pub fn is_transient(&self) -> bool {
        self.detail.is_transient()
    }
}

/// What went wrong in one scrape.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ScrapeErrorKind {
    /// The whole poll (connect, request, body) took longer than the timeout.
    #[error("no complete response within {after:?}")]
    Timeout {
        /// The configured timeout.
        after: Duration,
    },
    /// The TCP connection could not be opened (refused, unreachable, name not resolved).
    #[error("cannot connect to {target}: {source}")]
    Connect {
        /// `host:port`.
        target: Arc<str>,
        /// The operating system's error.
        source: Arc<std::io::Error>,
    },
    /// The connection failed after it was opened: reset, or an I/O error mid-response.
    #[error("HTTP transport: {source}")]
    Transport {
        /// The operating system's error.
        source: Arc<std::io::Error>,
    },
    /// The response is not well-formed HTTP/1.1, or the connection closed before it was
    /// complete.
    #[error("HTTP response: {source}")]
    Http {
        /// What is wrong, and where.
        source: crate::http1::HttpError,
    },
    /// The server answered with a status other than 200.
    #[error("HTTP status {status}, expected 200")]
    Status {
        /// The status code.
        status: u16,
    },
    /// The body is longer than the configured limit (by `Content-Length` or as read).
    #[error("body exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not UTF-8 text.
    #[error("body is not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 {
        /// The offset of the first invalid byte.
        offset: usize,
    },
    /// The body is not Prometheus text exposition.
    #[error("body is not Prometheus text: {source}")]
    Parse {
        /// The first malformed line.
        source: Box<ParseError>,
    },
    /// The body parsed but none of the engine's enabled metrics is in it; the reference does
    /// not refresh the endpoint then either.
    #[error("none of the {engine} metrics is exposed (missing {missing:?})")]
    NoMetrics {
        /// The engine mapping used.
        engine: Arc<str>,
        /// The enabled signals, all missing.
        missing: SignalSet,
    },
    /// The endpoint's engine label names no configured engine.
    #[error("engine label names unknown engine \"{engine}\"")]
    UnknownEngine {
        /// The label's value.
        engine: Arc<str>,
    },
    /// The endpoint's address and path do not form a request URI.
    #[error("cannot build a request for {target}{path}")]
    InvalidTarget {
        /// `host:port`.
        target: Arc<str>,
        /// The metrics path.
        path: Arc<str>,
    },
}

impl ScrapeErrorKind {
    /// The category this error is counted under.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Connect { .. } => ErrorKind::Connect,
            Self::Transport { .. } | Self::Http { .. } => ErrorKind::Transport,
            Self::Status { .. } => ErrorKind::Status,
            Self::BodyTooLarge { .. } => ErrorKind::BodyTooLarge,
            Self::NotUtf8 { .. } | Self::Parse { .. } => ErrorKind::Parse,
            Self::NoMetrics { .. } => ErrorKind::NoMetrics,
            Self::UnknownEngine { .. } | Self::InvalidTarget { .. } => ErrorKind::Config,
        }
    }

    /// See [`ScrapeError::is_transient`].
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout { .. }
            | Self::Connect { .. }
            | Self::Transport { .. }
            | Self::Http { .. } => true,
            Self::Status { status } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// The categories scrape errors are counted under (see
/// [`EndpointStats::errors`](crate::stats::EndpointStats::errors)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`ScrapeErrorKind::Timeout`].
    Timeout,
    /// [`ScrapeErrorKind::Connect`].
    Connect,
    /// [`ScrapeErrorKind::Transport`] (resets) and [`ScrapeErrorKind::Http`] (malformed
    /// responses, early close).
    Transport,
    /// [`ScrapeErrorKind::Status`].
    Status,
    /// [`ScrapeErrorKind::BodyTooLarge`].
    BodyTooLarge,
    /// [`ScrapeErrorKind::Parse`] and [`ScrapeErrorKind::NotUtf8`].
    Parse,
    /// [`ScrapeErrorKind::NoMetrics`].
    NoMetrics,
    /// [`ScrapeErrorKind::UnknownEngine`] and [`ScrapeErrorKind::InvalidTarget`].
    Config,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 8] = [
        Self::Timeout,
        Self::Connect,
        Self::Transport,
        Self::Status,
        Self::BodyTooLarge,
        Self::Parse,
        Self::NoMetrics,
        Self::Config,
    ];

    /// A short snake-case name, suitable as a Prometheus label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Transport => "transport",
            Self::Status => "http_status",
            Self::BodyTooLarge => "body_too_large",
            Self::Parse => "parse",
            Self::NoMetrics => "no_metrics",
            Self::Config => "config",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An invalid [`ScraperConfig`](crate::scraper::ScraperConfig) field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: expected {expected}, got {got}")]
#[non_exhaustive]
pub struct ConfigError {
    /// The field, e.g. `interval`.
    pub field: &'static str,
    /// What a valid value looks like.
    pub expected: &'static str,
    /// The value given.
    pub got: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_or_permanent() {
        let cases = [
            (
                ScrapeErrorKind::Timeout {
                    after: Duration::from_secs(1),
                },
                true,
            ),
            (ScrapeErrorKind::Status { status: 500 }, true),
            (ScrapeErrorKind::Status { status: 429 }, true),
            (ScrapeErrorKind::Status { status: 404 }, false),
            (ScrapeErrorKind::BodyTooLarge { limit: 1 }, false),
            (ScrapeErrorKind::NotUtf8 { offset: 0 }, false),
        ];
        for (kind, transient) in cases {
            assert_eq!(kind.is_transient(), transient, "{kind}");
        }
    }

    #[test]
    fn error_names_the_endpoint_and_stays_small() {
        let e = ScrapeError::new(
            "a",
            ScrapeErrorKind::Timeout {
                after: Duration::from_millis(1500),
            },
        );
        assert_eq!(
            e.to_string(),
            "scraping a: no complete response within 1.5s (transient)"
        );
        assert!(
            size_of::<ScrapeError>() <= 56,
            "{}",
            size_of::<ScrapeError>()
        );
    }

    #[test]
    fn kinds_index_their_position() {
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }
}

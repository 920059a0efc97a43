//! Where the endpoints to poll come from.
//!
//! A [`Discovery`] source reports the **whole** current set of endpoints to an
//! [`EndpointSink`] whenever it changes; the scraper compares each set with the previous one,
//! starts polling new endpoints, stops polling the ones that left and removes them from the
//! pool. Reporting whole sets keeps sources simple and makes a lost intermediate set harmless:
//! only the latest one matters.
//!
//! | source | when to use it |
//! | --- | --- |
//! | [`StaticDiscovery`] | a fixed list known at start (tests, a simulator, a fixed fleet) |
//! | [`FileDiscovery`] | a YAML or JSON file that an operator or a ConfigMap edits; reloaded on change |
//! | `kubernetes::KubernetesDiscovery` (feature `kubernetes`) | an InferencePool's Pods, or Pods matching a label selector |

mod file;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use pointsman::Endpoint;
use tokio::sync::watch;

use crate::stats::StatsRegistry;

pub use file::{EndpointFile, EndpointFileEntry, FileDiscovery};

/// A source of endpoint sets.
///
/// `run` reports the current set with [`EndpointSink::publish`] each time it changes, and
/// returns only when it has nothing more to report (`Ok`) or cannot go on (`Err`). The scraper
/// logs an error, counts it in [`ScraperStats`](crate::stats::ScraperStats), waits
/// [`ScraperConfig::discovery_retry`](crate::scraper::ScraperConfig::discovery_retry) and calls
/// `run` again; the endpoints last published stay polled meanwhile. After `Ok` it keeps the
/// last set for good.
///
/// # Example
///
/// ```
/// use pointsman::Endpoint;
/// use pointsman_scraper::discovery::{Discovery, DiscoveryError, EndpointSink};
///
/// /// Two fixed endpoints, published once.
/// struct Pair;
///
/// impl Discovery for Pair {
///     async fn run(&mut self, sink: &EndpointSink) -> Result<(), DiscoveryError> {
///         sink.publish(vec![
///             Endpoint::new("a", "127.0.0.1", 8000),
///             Endpoint::new("b", "127.0.0.1", 8001),
///         ]);
///         Ok(())
///     }
/// }
///
/// let (sink, updates) = EndpointSink::new();
/// block_on(Pair.run(&sink)).unwrap();
/// assert_eq!(updates.borrow().as_ref().map(|set| set.len()), Some(2));
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
///
/// # Be careful
///
/// Publish whole sets, not changes: publishing only the endpoint that just appeared makes the
/// scraper drop every other one.
pub trait Discovery: Send + 'static {
    /// Reports endpoint sets to `sink` until there is nothing more to report.
    ///
    /// # Errors
    ///
    /// A [`DiscoveryError`] when the source cannot go on; the scraper calls `run` again later.
    fn run(
        &mut self,
        sink: &EndpointSink,
    ) -> impl Future<Output = Result<(), DiscoveryError>> + Send;
}

/// Where a [`Discovery`] reports endpoint sets (and errors it recovered from).
#[derive(Debug, Clone)]
pub struct EndpointSink {
    tx: Arc<watch::Sender<Option<EndpointSet>>>,
    stats: Arc<StatsRegistry>,
}

/// A whole set of endpoints, as published by a [`Discovery`].
pub type EndpointSet = Arc<[Endpoint]>;

impl EndpointSink {
    /// A sink and the receiving end, which holds `None` until the first set is published. For
    /// testing a source or driving a pool without the scraper.
    pub fn new() -> (Self, watch::Receiver<Option<EndpointSet>>) {
        Self::with_stats(Arc::default())
    }

    pub(crate) fn with_stats(
        stats: Arc<StatsRegistry>,
    ) -> (Self, watch::Receiver<Option<EndpointSet>>) {
        let (tx, rx) = watch::channel(None);
        (
            Self {
                tx: Arc::new(tx),
                stats,
            },
            rx,
        )
    }

    /// Replaces the current set. Names must be unique; of two endpoints with one name the last
    /// is kept. A set equal to the current one is not re-published.
    pub fn publish(&self, endpoints: Vec<Endpoint>) {
        let mut unique: Vec<Endpoint> = Vec::with_capacity(endpoints.len());
        for e in endpoints {
            match unique.iter_mut().find(|u| u.name() == e.name()) {
                Some(slot) => *slot = e,
                None => unique.push(e),
            }
        }
        let set: EndpointSet = unique.into();
        self.tx.send_if_modified(|current| {
            if current.as_deref() == Some(&*set) {
                return false;
            }
            *current = Some(set);
            true
        });
    }

    /// Records an error the source recovered from (e.g. a file that no longer parses, whose
    /// last good set stays in force): logged and counted in the scraper's statistics.
    pub fn report_error(&self, error: &DiscoveryError) {
        tracing::warn!(%error, "endpoint discovery");
        self.stats.record_discovery_error(error.to_string());
    }

    /// The errors reported so far through this sink or its clones.
    pub fn errors_reported(&self) -> u64 {
        self.stats.discovery_error_count()
    }
}

/// Why discovery could not produce an endpoint set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// An endpoint file could not be read (transient: it may appear later).
    #[error("reading endpoint file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// An endpoint file does not hold a valid endpoint list; every problem is listed, each
    /// with its location (permanent until the file changes).
    #[error("endpoint file {}: {}", path.display(), problems.join("; "))]
    Format {
        /// The file.
        path: PathBuf,
        /// E.g. `endpoints[1].port: expected 1..=65535, got 0`.
        problems: Vec<String>,
    },
    /// The Kubernetes API failed (list, watch, or an object that cannot be used).
    #[error("kubernetes: {message}")]
    Kubernetes {
        /// What failed, e.g. `watching Pods in namespace default: …`.
        message: String,
        /// Whether retrying may help (network and API-server errors) or not (a missing CRD,
        /// missing permissions, an invalid selector).
        transient: bool,
    },
}

impl DiscoveryError {
    /// Whether trying again without any change may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Read { .. } => true,
            Self::Format { .. } => false,
            Self::Kubernetes { transient, .. } => *transient,
        }
    }
}

/// A fixed list of endpoints, published once.
///
/// ```
/// use pointsman::Endpoint;
/// use pointsman_scraper::discovery::StaticDiscovery;
///
/// let d = StaticDiscovery::new([Endpoint::new("vllm-0", "127.0.0.1", 8000)]);
/// assert_eq!(d.endpoints().len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct StaticDiscovery {
    endpoints: Vec<Endpoint>,
}

impl StaticDiscovery {
    /// A source that reports `endpoints`.
    pub fn new(endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        Self {
            endpoints: endpoints.into_iter().collect(),
        }
    }

    /// The endpoints.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }
}

impl Discovery for StaticDiscovery {
    async fn run(&mut self, sink: &EndpointSink) -> Result<(), DiscoveryError> {
        sink.publish(self.endpoints.clone());
        Ok(())
    }
}

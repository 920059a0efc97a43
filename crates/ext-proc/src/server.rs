//! The servers: ext_proc gRPC (optionally TLS), gRPC health, Prometheus metrics, and the
//! scraper feeding the pool.

use crate::metrics::EppMetrics;
use crate::objectives::Objectives;
use crate::stream::{Flow, ProcessorContext, ProcessorOptions, StreamProcessor};
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::{
    ExternalProcessor, ExternalProcessorServer,
};
use envoy_types::pb::envoy::service::ext_proc::v3::{ProcessingRequest, ProcessingResponse};
use futures_util::{Stream, StreamExt};
use pointsman::config::resolve;
use pointsman::registry::Registry;
use pointsman::{ConfigError, Endpoint, EndpointPickerConfig, Scheduler};
use pointsman_scraper::discovery::{FileDiscovery, StaticDiscovery};
use pointsman_scraper::engine::EngineRegistry;
use pointsman_scraper::scraper::{Scraper, ScraperConfig, ScraperHandle};
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

/// The gRPC service name of ext_proc, also reported by the health service.
pub const EXT_PROC_SERVICE: &str = "envoy.service.ext_proc.v3.ExternalProcessor";

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The EndpointPickerConfig is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The scraper settings are invalid.
    #[error("scraper: {0}")]
    Scraper(String),
    /// Certificates could not be read or generated.
    #[error("tls: {0}")]
    Tls(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// A gRPC worker thread could not start or stopped unexpectedly.
    #[error("grpc worker: {0}")]
    Worker(String),
}

/// TLS on the ext_proc port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Plain HTTP/2.
    Disabled,
    /// A self-signed certificate generated at start (the reference's default).
    SelfSigned,
    /// `tls.crt` and `tls.key` in a directory (the reference's `--cert-path`).
    Dir(PathBuf),
}

/// Where endpoints come from.
#[derive(Debug, Clone)]
pub enum EndpointSource {
    /// A fixed list.
    Static(Vec<Endpoint>),
    /// A YAML/JSON endpoint file, reloaded on change
    /// (see [`pointsman_scraper::discovery::EndpointFile`]).
    File(PathBuf),
    /// Pods found through the Kubernetes API: an InferencePool's selector and target ports, or
    /// the standalone `--endpoint-selector` (feature `kubernetes`).
    #[cfg(feature = "kubernetes")]
    Kubernetes {
        /// The namespace watched.
        namespace: String,
        /// What selects the Pods.
        source: pointsman_scraper::discovery::kubernetes::PodSource,
    },
}

/// Everything [`run`] needs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// ext_proc address (`--grpc-port`).
    pub grpc_addr: SocketAddr,
    /// gRPC health address (`--grpc-health-port`).
    pub health_addr: SocketAddr,
    /// Prometheus address (`--metrics-port`).
    pub metrics_addr: SocketAddr,
    /// TLS mode.
    pub tls: Tls,
    /// The picker configuration.
    pub config: EndpointPickerConfig,
    /// Objective name → priority.
    pub objectives: Objectives,
    /// Request-path settings.
    pub processor: ProcessorOptions,
    /// Scraper settings.
    pub scraper: ScraperConfig,
    /// Staleness threshold for scheduling and pool gauges.
    pub staleness: Duration,
    /// Endpoints.
    pub endpoints: EndpointSource,
    /// Pool name, for the `inference_pool_*` labels.
    pub pool_name: String,
    /// Threads serving ext_proc, each with a single-threaded runtime of its own; 0 serves on
    /// the caller's runtime (`--grpc-workers`, default: one per CPU).
    pub grpc_workers: usize,
}

/// Validates `yaml` and returns the configuration with every default made explicit.
///
/// ```
/// let text = pointsman_extproc::server::check_config("apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: queue-scorer\n")?;
/// assert!(text.contains("max-score-picker"));
/// # Ok::<(), pointsman::ConfigError>(())
/// ```
///
/// # Errors
/// The [`ConfigError`] listing every problem.
pub fn check_config(yaml: &str) -> Result<String, ConfigError> {
    let config = EndpointPickerConfig::from_yaml(yaml)?;
    let resolved = resolve(&config, &Registry::with_builtins())?;
    Ok(resolved.config().to_yaml())
}

/// The ext_proc gRPC service.
#[derive(Debug, Clone)]
pub struct ExtProcService {
    ctx: Arc<ProcessorContext>,
}

impl ExtProcService {
    /// A service sharing `ctx` between streams.
    pub fn new(ctx: Arc<ProcessorContext>) -> Self {
        ExtProcService { ctx }
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<ProcessingResponse, Status>> + Send>>;

struct StreamState {
    inbound: Streaming<ProcessingRequest>,
    processor: StreamProcessor,
    pending: VecDeque<ProcessingResponse>,
    out: Vec<ProcessingResponse>,
    done: bool,
}

impl StreamState {
    /// Reads and processes inbound messages until a response is ready; `None` once the stream
    /// is over (closed by the processor, or ended or broken by the client).
    async fn next_response(&mut self) -> Option<Result<ProcessingResponse, Status>> {
        loop {
            if let Some(r) = self.pending.pop_front() {
                return Some(Ok(r));
            }
            if self.done {
                return None;
            }
            match self.inbound.message().await {
                Ok(Some(msg)) => {
                    self.out.clear();
                    match self.processor.on_message(msg, &mut self.out) {
                        Ok(flow) => {
                            self.pending.extend(self.out.drain(..));
                            self.done = flow == Flow::Close;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "ext_proc protocol error");
                            self.done = true;
                            return Some(Err(Status::failed_precondition(e.to_string())));
                        }
                    }
                }
                Ok(None) => return None,
                Err(status) => {
                    tracing::debug!(%status, "ext_proc stream ended by the client");
                    return None;
                }
            }
        }
    }
}

#[tonic::async_trait]
impl ExternalProcessor for ExtProcService {
    type ProcessStream = ResponseStream;

    async fn process(
        &self,
        request: Request<Streaming<ProcessingRequest>>,
    ) -> Result<Response<Self::ProcessStream>, Status> {
        let mut state = StreamState {
            inbound: request.into_inner(),
            processor: StreamProcessor::new(self.ctx.clone()),
            pending: VecDeque::new(),
            out: Vec::new(),
            done: false,
        };
        // The gRPC response headers leave when this function returns. Returning only once the
        // first response is ready lets them share one write (and one wake-up of the client)
        // with that response; Envoy sends the request's messages without waiting for them.
        match state.next_response().await {
            Some(Ok(first)) => state.pending.push_front(first),
            Some(Err(status)) => return Err(status),
            None => {}
        }
        // Boxed: `unfold` moves its state in and out of the future on every message.
        let stream = futures_util::stream::unfold(Box::new(state), |mut s| async move {
            let next = s.next_response().await?;
            Some((next, s))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Loads the TLS identity for `tls`, or `None` when disabled.
///
/// # Errors
/// [`ServeError::Tls`] when the files cannot be read or a certificate cannot be made.
pub fn tls_identity(tls: &Tls) -> Result<Option<Identity>, ServeError> {
    match tls {
        Tls::Disabled => Ok(None),
        Tls::SelfSigned => {
            let ck = rcgen::generate_simple_self_signed(vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
            ])
            .map_err(|e| ServeError::Tls(e.to_string()))?;
            Ok(Some(Identity::from_pem(
                ck.cert.pem(),
                ck.signing_key.serialize_pem(),
            )))
        }
        Tls::Dir(dir) => {
            let read = |name: &str| {
                let path = dir.join(name);
                std::fs::read(&path)
                    .map_err(|e| ServeError::Tls(format!("{}: {e}", path.display())))
            };
            Ok(Some(Identity::from_pem(read("tls.crt")?, read("tls.key")?)))
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// HTTP/2 stream flow-control window of the ext_proc server: 8 MiB.
pub const HTTP2_STREAM_WINDOW: u32 = 8 << 20;
/// HTTP/2 connection flow-control window of the ext_proc server: 64 MiB.
pub const HTTP2_CONNECTION_WINDOW: u32 = 64 << 20;

/// Runs every server until `shutdown` completes.
///
/// # Errors
/// A [`ServeError`] when the configuration is invalid, a port cannot be bound, or a server
/// fails.
pub async fn run(
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let scheduler = Arc::new(
        Scheduler::builder()
            .metrics_staleness(Some(options.staleness))
            .build(&options.config)?,
    );
    let pool = scheduler.pool().clone();
    let scraper = Scraper::new(
        pool.clone(),
        options.scraper.clone(),
        EngineRegistry::builtin(),
    )
    .map_err(|e| ServeError::Scraper(e.to_string()))?
    .with_clock(scheduler.clock().clone());
    let handle: ScraperHandle = match &options.endpoints {
        EndpointSource::Static(list) => {
            pool.set_endpoints(list.iter().cloned());
            scraper.spawn(StaticDiscovery::new(list.iter().cloned()))
        }
        EndpointSource::File(path) => scraper.spawn(FileDiscovery::new(path.clone())),
        #[cfg(feature = "kubernetes")]
        EndpointSource::Kubernetes { namespace, source } => {
            let client = kube::Client::try_default().await.map_err(|e| {
                ServeError::Scraper(format!("cannot reach the Kubernetes API: {e}"))
            })?;
            scraper.spawn(
                pointsman_scraper::discovery::kubernetes::KubernetesDiscovery::new(
                    client,
                    namespace.clone(),
                    source.clone(),
                ),
            )
        }
    };
    let metrics = Arc::new(EppMetrics::new());
    let ctx = Arc::new(ProcessorContext {
        scheduler: scheduler.clone(),
        objectives: options.objectives.clone(),
        metrics: metrics.clone(),
        options: options.processor.clone(),
    });

    // Health.
    let (reporter, health_service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("liveness", tonic_health::ServingStatus::Serving)
        .await;
    let ready_pool = pool.clone();
    let ready_task = tokio::spawn(async move {
        let mut last = None;
        loop {
            let ready = !ready_pool.snapshot().is_empty();
            if last != Some(ready) {
                let status = if ready {
                    tonic_health::ServingStatus::Serving
                } else {
                    tonic_health::ServingStatus::NotServing
                };
                for name in ["readiness", "", EXT_PROC_SERVICE] {
                    reporter.set_service_status(name, status).await;
                }
                last = Some(ready);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };

    let health_listener = bind(options.health_addr).await?;
    let health_server = Server::builder()
        .add_service(health_service)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(health_listener),
            stopped(stop_rx.clone()),
        );

    let metrics_listener = bind(options.metrics_addr).await?;
    let metrics_task = tokio::spawn(serve_metrics(
        metrics_listener,
        metrics.clone(),
        scheduler.clone(),
        options.pool_name.clone(),
        options.staleness,
        handle.stats(),
        stop_rx.clone(),
    ));

    let grpc_listener = bind(options.grpc_addr).await?;
    let identity = tls_identity(&options.tls)?;
    let grpc_server = async {
        if options.grpc_workers == 0 {
            grpc_builder(identity)?
                .add_service(ExternalProcessorServer::new(ExtProcService::new(ctx)))
                .serve_with_incoming_shutdown(
                    // The builder's `tcp_nodelay` only reaches listeners tonic binds itself;
                    // without it, small ext_proc messages wait on delayed ACKs (~40 ms tails).
                    tonic::transport::server::TcpIncoming::from(grpc_listener)
                        .with_nodelay(Some(true)),
                    stopped(stop_rx.clone()),
                )
                .await
                .map_err(ServeError::from)
        } else {
            serve_on_workers(
                grpc_listener,
                options.grpc_workers,
                ctx,
                identity,
                stop_rx.clone(),
            )
            .await
        }
    };
    let health_server = async { health_server.await.map_err(ServeError::from) };
    tracing::info!(
        grpc = %options.grpc_addr, health = %options.health_addr, metrics = %options.metrics_addr,
        tls = ?options.tls, "pointsman-epp serving"
    );
    let result = tokio::try_join!(grpc_server, health_server);
    ready_task.abort();
    metrics_task.abort();
    drop(handle);
    result.map(|_| ())
}

/// The ext_proc server's HTTP/2 and TLS settings.
fn grpc_builder(identity: Option<Identity>) -> Result<Server, ServeError> {
    // Flow-control windows sized for whole request bodies in flight (Envoy's own defaults are
    // 256 MiB per stream): with tonic's 64 KiB default, a 220 KB body needs several round trips.
    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .initial_stream_window_size(Some(HTTP2_STREAM_WINDOW))
        .initial_connection_window_size(Some(HTTP2_CONNECTION_WINDOW))
        .tcp_nodelay(true);
    if let Some(identity) = identity {
        builder = builder.tls_config(ServerTlsConfig::new().identity(identity))?;
    }
    Ok(builder)
}

/// Serves ext_proc on `workers` threads, each running a single-threaded tokio runtime of its
/// own (as Envoy runs one event loop per worker); accepted connections are dealt to them in
/// turn, and each connection's streams stay on its thread. On a shared work-stealing runtime
/// the same requests cost about a fifth more CPU (the `extproc_load` bench: threads waking
/// each other for every frame).
async fn serve_on_workers(
    listener: tokio::net::TcpListener,
    workers: usize,
    ctx: Arc<ProcessorContext>,
    identity: Option<Identity>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let mut queues = Vec::with_capacity(workers);
    let mut finished = Vec::with_capacity(workers);
    for worker in 0..workers {
        let (queue, accepted) = tokio::sync::mpsc::unbounded_channel::<std::net::TcpStream>();
        let (done, result) = tokio::sync::oneshot::channel::<Result<(), ServeError>>();
        let (ctx, identity, stop) = (ctx.clone(), identity.clone(), stop.clone());
        let serve = move || -> Result<(), ServeError> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| ServeError::Worker(e.to_string()))?;
            runtime.block_on(async move {
                let incoming =
                    tokio_stream::wrappers::UnboundedReceiverStream::new(accepted).map(|tcp| {
                        // Registered with this thread's runtime.
                        let tcp = tokio::net::TcpStream::from_std(tcp)?;
                        tcp.set_nodelay(true)?;
                        Ok::<_, std::io::Error>(tcp)
                    });
                let mut stop = stop;
                grpc_builder(identity)?
                    .add_service(ExternalProcessorServer::new(ExtProcService::new(ctx)))
                    .serve_with_incoming_shutdown(incoming, async move {
                        let _ = stop.wait_for(|v| *v).await;
                    })
                    .await
                    .map_err(ServeError::from)
            })
        };
        std::thread::Builder::new()
            .name(format!("grpc-worker-{worker}"))
            .spawn(move || {
                let _ = done.send(serve());
            })
            .map_err(|e| ServeError::Worker(e.to_string()))?;
        queues.push(queue);
        finished.push(result);
    }
    let mut turn = 0usize;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|v| *v) => break,
        };
        let tcp = match accepted.and_then(|(tcp, _)| tcp.into_std()) {
            Ok(tcp) => tcp,
            Err(e) => {
                // Out of descriptors and the like: the listener stays up.
                tracing::warn!(error = %e, "ext_proc accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(queue) = queues.get(turn % workers) else {
            break; // `workers` > 0 here, so this is unreachable.
        };
        turn = turn.wrapping_add(1);
        if queue.send(tcp).is_err() {
            break; // That worker stopped; its result says why.
        }
    }
    drop(queues);
    for result in finished {
        result
            .await
            .map_err(|_| ServeError::Worker("a worker thread panicked".into()))??;
    }
    Ok(())
}

async fn serve_metrics(
    listener: tokio::net::TcpListener,
    metrics: Arc<EppMetrics>,
    scheduler: Arc<Scheduler>,
    pool_name: String,
    staleness: Duration,
    stats: pointsman_scraper::stats::StatsHandle,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|v| *v) => return,
        };
        let Ok((tcp, _)) = accepted else {
            continue;
        };
        let (metrics, scheduler, pool_name, stats) = (
            metrics.clone(),
            scheduler.clone(),
            pool_name.clone(),
            stats.clone(),
        );
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (status, body) = if req.uri().path() == "/metrics" {
                        (
                            200,
                            metrics.encode(
                                &pool_name,
                                scheduler.pool(),
                                &**scheduler.clock(),
                                staleness,
                                Some(&stats),
                            ),
                        )
                    } else {
                        (404, "not found\n".to_string())
                    };
                    let resp = hyper::Response::builder()
                        .status(status)
                        .header(
                            "content-type",
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )
                        .body(Full::new(Bytes::from(body)));
                    async move { resp }
                });
            let io = hyper_util::rt::TokioIo::new(tcp);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await;
        });
    }
}

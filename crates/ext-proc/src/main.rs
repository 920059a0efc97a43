//! `pointsman-epp`: flags, then [`pointsman_extproc::server::run`].

use anyhow::{Context, Result, bail};
use clap::{ArgAction, Parser};
use pointsman::EndpointPickerConfig;
use pointsman::config::parse_go_duration;
use pointsman_extproc::endpoints::parse_endpoints;
use pointsman_extproc::objectives::Objectives;
use pointsman_extproc::server::{self, EndpointSource, ServerOptions, Tls};
use pointsman_extproc::stream::ProcessorOptions;
use pointsman_scraper::scraper::ScraperConfig;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// An Endpoint Picker for Envoy-based gateways (Envoy ext_proc), scheduling LLM requests with
/// pointsman. Flags follow the Gateway API Inference Extension's reference picker.
#[derive(Debug, Parser)]
#[command(name = "pointsman-epp", version)]
struct Flags {
    /// Validate an EndpointPickerConfig file, print it with every default, and exit.
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
    /// ext_proc gRPC port.
    #[arg(long, default_value_t = 9002)]
    grpc_port: u16,
    /// gRPC health port (services liveness, readiness and the ext_proc service name).
    #[arg(long, default_value_t = 9003)]
    grpc_health_port: u16,
    /// Prometheus metrics port (`/metrics`).
    #[arg(long, default_value_t = 9090)]
    metrics_port: u16,
    /// Address every listener binds.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// EndpointPickerConfig file (YAML).
    #[arg(long, value_name = "FILE", conflicts_with = "config_text")]
    config_file: Option<PathBuf>,
    /// EndpointPickerConfig text (YAML).
    #[arg(long, value_name = "YAML")]
    config_text: Option<String>,
    /// How often each endpoint's /metrics is polled (Go duration).
    #[arg(long, default_value = "50ms", value_parser = go_duration)]
    refresh_metrics_interval: Duration,
    /// Metrics older than this lose to fresh ones and leave the pool gauges (Go duration).
    #[arg(long, default_value = "2s", value_parser = go_duration)]
    metrics_staleness_threshold: Duration,
    /// InferencePool name (labels the inference_pool_* metrics).
    #[arg(long, default_value = "pointsman")]
    pool_name: String,
    /// InferencePool namespace (falls back to $NAMESPACE, then "default").
    #[arg(long)]
    pool_namespace: Option<String>,
    /// Standalone mode: select Pods by labels `k=v,k2=v2` (with `--endpoint-target-ports`)
    /// instead of an InferencePool.
    #[arg(long)]
    endpoint_selector: Option<String>,
    /// Target ports for endpoints given without a port (1 to 8, comma-separated).
    #[arg(long, value_delimiter = ',', num_args = 1..=8)]
    endpoint_target_ports: Vec<u16>,
    /// Static endpoints: comma-separated `[name=]host[:port]`.
    #[arg(long, value_name = "LIST")]
    endpoints: Option<String>,
    /// Endpoint file (YAML/JSON `endpoints: [{name, address, port, labels}]`), reloaded on change.
    #[arg(long, value_name = "FILE", conflicts_with = "endpoints")]
    endpoints_file: Option<PathBuf>,
    /// Serve ext_proc over TLS (self-signed unless --cert-path).
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    secure_serving: bool,
    /// Directory holding tls.crt and tls.key.
    #[arg(long, value_name = "DIR")]
    cert_path: Option<PathBuf>,
    /// Ignore the gateway's endpoint subset hint.
    #[arg(long)]
    disable_endpoint_subset_filter: bool,
    /// Objective priority `NAME=PRIORITY` (repeatable); negative is sheddable.
    #[arg(long = "objective", value_name = "NAME=PRIORITY")]
    objectives: Vec<String>,
    /// Objectives file: a YAML map of objective name to priority.
    #[arg(long, value_name = "FILE")]
    objectives_file: Option<PathBuf>,
    /// Largest request body buffered, in bytes; larger requests get 413.
    #[arg(long, default_value_t = 64 << 20)]
    max_body_bytes: usize,
    /// Threads serving ext_proc, each with its own single-threaded runtime and a share of the
    /// gateway's connections; 0 serves them on the shared runtime. Default: one per CPU.
    #[arg(long)]
    grpc_workers: Option<usize>,
    /// Log filter (tracing EnvFilter syntax), overridden by $RUST_LOG.
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn go_duration(s: &str) -> Result<Duration, String> {
    parse_go_duration(s)
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    if let Some(path) = &flags.check_config {
        return match std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))
            .and_then(|text| server::check_config(&text).map_err(anyhow::Error::from))
        {
            Ok(resolved) => {
                print!("{resolved}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&flags.log_level));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    match serve(flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pointsman-epp: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(flags: Flags) -> anyhow::Result<()> {
    let options = options(flags)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        let shutdown = async {
            let ctrl_c = tokio::signal::ctrl_c();
            #[cfg(unix)]
            {
                let mut term =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(t) => t,
                        Err(_) => {
                            let _ = ctrl_c.await;
                            return;
                        }
                    };
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            let _ = ctrl_c.await;
        };
        server::run(options, shutdown).await
    })?;
    Ok(())
}

fn options(flags: Flags) -> anyhow::Result<ServerOptions> {
    let config = match (&flags.config_file, &flags.config_text) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --config-file {}", path.display()))?;
            EndpointPickerConfig::from_yaml(&text).context("--config-file")?
        }
        (None, Some(text)) => EndpointPickerConfig::from_yaml(text).context("--config-text")?,
        (None, None) => EndpointPickerConfig::default_config(),
    };
    let mut objectives = match &flags.objectives_file {
        Some(path) => Objectives::from_yaml(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading --objectives-file {}", path.display()))?,
        )?,
        None => Objectives::default(),
    };
    for entry in &flags.objectives {
        objectives.add_entry(entry)?;
    }
    let endpoints = match (&flags.endpoints, &flags.endpoints_file) {
        (Some(list), _) => EndpointSource::Static(
            parse_endpoints(list, &flags.endpoint_target_ports).map_err(anyhow::Error::msg)?,
        ),
        (None, Some(path)) => EndpointSource::File(path.clone()),
        (None, None) => kubernetes_source(&flags)?,
    };
    let tls = match (flags.secure_serving, &flags.cert_path) {
        (false, _) => Tls::Disabled,
        (true, Some(dir)) => Tls::Dir(dir.clone()),
        (true, None) => Tls::SelfSigned,
    };
    tracing::debug!(pool = %flags.pool_name, namespace = %namespace(&flags), "pool");
    let addr = |port| SocketAddr::new(flags.bind_address, port);
    Ok(ServerOptions {
        grpc_addr: addr(flags.grpc_port),
        health_addr: addr(flags.grpc_health_port),
        metrics_addr: addr(flags.metrics_port),
        tls,
        config,
        objectives,
        processor: ProcessorOptions {
            max_body_bytes: flags.max_body_bytes,
            disable_subset_filter: flags.disable_endpoint_subset_filter,
            ..ProcessorOptions::default()
        },
        scraper: ScraperConfig {
            interval: flags.refresh_metrics_interval,
            ..ScraperConfig::default()
        },
        staleness: flags.metrics_staleness_threshold,
        endpoints,
        pool_name: flags.pool_name,
        grpc_workers: flags.grpc_workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }),
    })
}

/// The pool's namespace: `--pool-namespace`, else `$NAMESPACE`, else `default`.
fn namespace(flags: &Flags) -> String {
    flags
        .pool_namespace
        .clone()
        .or_else(|| std::env::var("NAMESPACE").ok())
        .unwrap_or_else(|| "default".to_string())
}

/// Endpoints from the Kubernetes API: `--endpoint-selector` (standalone) or the InferencePool
/// named by `--pool-name`.
#[cfg(feature = "kubernetes")]
fn kubernetes_source(flags: &Flags) -> Result<EndpointSource> {
    use pointsman_scraper::discovery::kubernetes::PodSource;
    let source = match &flags.endpoint_selector {
        Some(selector) => {
            let mut match_labels = std::collections::BTreeMap::new();
            for pair in selector.split(',').filter(|p| !p.trim().is_empty()) {
                let (k, v) = pair.split_once('=').with_context(|| {
                    format!("--endpoint-selector {selector:?}: expected k=v,k2=v2")
                })?;
                match_labels.insert(k.trim().to_string(), v.trim().to_string());
            }
            if match_labels.is_empty() {
                bail!("--endpoint-selector {selector:?}: expected at least one k=v label");
            }
            if flags.endpoint_target_ports.is_empty() {
                bail!("--endpoint-selector needs --endpoint-target-ports (1 to 8 ports)");
            }
            PodSource::Selector {
                match_labels,
                target_ports: flags.endpoint_target_ports.clone(),
            }
        }
        None => PodSource::InferencePool {
            name: flags.pool_name.clone(),
        },
    };
    Ok(EndpointSource::Kubernetes {
        namespace: namespace(flags),
        source,
    })
}

/// Without the `kubernetes` feature, endpoints must be given explicitly.
#[cfg(not(feature = "kubernetes"))]
fn kubernetes_source(_flags: &Flags) -> Result<EndpointSource> {
    bail!(
        "no endpoints: give --endpoints LIST or --endpoints-file FILE (this build has no Kubernetes discovery)"
    )
}

#[cfg(all(test, feature = "kubernetes"))]
mod tests {
    use super::*;
    use clap::Parser;
    use pointsman_scraper::discovery::kubernetes::PodSource;

    fn source(args: &[&str]) -> Result<EndpointSource> {
        let flags =
            Flags::try_parse_from(std::iter::once("pointsman-epp").chain(args.iter().copied()))?;
        kubernetes_source(&flags)
    }

    #[test]
    fn standalone_selector_and_pool_modes() {
        match source(&[
            "--endpoint-selector",
            "app=vllm, tier=gpu",
            "--endpoint-target-ports",
            "8000,8001",
            "--pool-namespace",
            "ml",
        ]) {
            Ok(EndpointSource::Kubernetes {
                namespace,
                source:
                    PodSource::Selector {
                        match_labels,
                        target_ports,
                    },
            }) => {
                assert_eq!(namespace, "ml");
                assert_eq!(match_labels.get("app").map(String::as_str), Some("vllm"));
                assert_eq!(match_labels.get("tier").map(String::as_str), Some("gpu"));
                assert_eq!(target_ports, vec![8000, 8001]);
            }
            other => panic!("unexpected {other:?}"),
        }
        match source(&["--pool-name", "llama-pool", "--pool-namespace", "ml"]) {
            Ok(EndpointSource::Kubernetes {
                source: PodSource::InferencePool { name },
                ..
            }) => assert_eq!(name, "llama-pool"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bad_selectors_are_errors() {
        let e = source(&[
            "--endpoint-selector",
            "app",
            "--endpoint-target-ports",
            "8000",
        ])
        .unwrap_err();
        assert!(e.to_string().contains("expected k=v"), "{e}");
        let e = source(&["--endpoint-selector", "app=vllm"]).unwrap_err();
        assert!(e.to_string().contains("--endpoint-target-ports"), "{e}");
    }
}

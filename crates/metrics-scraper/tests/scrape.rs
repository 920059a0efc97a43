//! The polling loop against in-process HTTP servers on 127.0.0.1: captures are published,
//! faults are counted by kind and leave the endpoint stale, membership follows discovery.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{
    Behavior, TestServer, VLLM_IDLE, VLLM_LORA, VLLM_RUNNING4, WAIT, capture, wait_until,
};
use pointsman::time::{Clock, ManualClock, Timestamp};
use pointsman::{Endpoint, Metrics, Pool};
use pointsman_scraper::discovery::{FileDiscovery, StaticDiscovery};
use pointsman_scraper::engine::{DEFAULT_ENGINE_LABEL_KEY, EngineRegistry};
use pointsman_scraper::error::ErrorKind;
use pointsman_scraper::scraper::{Scraper, ScraperConfig, ScraperHandle};

fn fast_config() -> ScraperConfig {
    ScraperConfig {
        interval: Duration::from_millis(10),
        timeout: Duration::from_millis(300),
        max_body_bytes: 256 << 10,
        publish_interval: Duration::from_millis(2),
        discovery_retry: Duration::from_millis(20),
        ..ScraperConfig::default()
    }
}

fn metrics(pool: &Pool, name: &str) -> Option<Metrics> {
    pool.snapshot().by_name(name).map(|e| e.metrics().clone())
}

fn serve(name: &str) -> Behavior {
    Behavior::Serve(Bytes::from(capture(name)))
}

struct Setup {
    pool: Arc<Pool>,
    clock: Arc<ManualClock>,
    handle: ScraperHandle,
}

fn start(endpoints: Vec<Endpoint>, config: ScraperConfig) -> Setup {
    let pool = Arc::new(Pool::new());
    let clock = Arc::new(ManualClock::new(Timestamp::from_nanos(1_000)));
    let handle = Scraper::new(pool.clone(), config, EngineRegistry::builtin())
        .unwrap()
        .with_clock(clock.clone())
        .spawn(StaticDiscovery::new(endpoints));
    Setup {
        pool,
        clock,
        handle,
    }
}

fn local(name: &str, server: &TestServer) -> Endpoint {
    Endpoint::new(name, "127.0.0.1", server.port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_are_published_over_one_keep_alive_connection() {
    let server = TestServer::start(serve(VLLM_RUNNING4)).await;
    let s = start(vec![local("vllm-0", &server)], fast_config());

    assert!(
        wait_until(WAIT, || metrics(&s.pool, "vllm-0")
            .is_some_and(|m| m.updated_at.is_some()))
        .await,
        "never published"
    );
    let m = metrics(&s.pool, "vllm-0").unwrap();
    assert_eq!(m.running_requests_size, 4);
    assert_eq!(m.waiting_queue_size, 0);
    assert!((m.kv_cache_usage - 0.002_930_402_930_402_92).abs() < 1e-12);
    assert_eq!(m.updated_at, Some(s.clock.now()));

    server.set(serve(VLLM_LORA));
    s.clock.advance(Duration::from_millis(100));
    assert!(
        wait_until(WAIT, || metrics(&s.pool, "vllm-0")
            .is_some_and(|m| m.waiting_queue_size == 8))
        .await
    );
    let m = metrics(&s.pool, "vllm-0").unwrap();
    assert_eq!(m.running_requests_size, 2);
    assert_eq!(m.updated_at, Some(s.clock.now()));
    assert!(m.max_active_adapters > 0, "{m:?}");

    server.set(serve(VLLM_IDLE));
    assert!(
        wait_until(WAIT, || metrics(&s.pool, "vllm-0")
            .is_some_and(|m| m.running_requests_size == 0))
        .await
    );
    assert!(wait_until(WAIT, || server.requests() >= 10).await);
    assert_eq!(server.connections(), 1, "polls reuse one connection");
    let stats = s.handle.stats().snapshot();
    let e = stats.endpoint("vllm-0").unwrap();
    assert!(e.successes >= 3, "{e:?}");
    assert_eq!(e.errors.total(), 0, "{e:?}");
    assert_eq!(e.latency.count, e.attempts);
    assert!(stats.publishes >= 3);
}

/// One fault, the error kind it must be counted under, and whether the server should be
/// configured with a short timeout.
struct FaultCase {
    name: &'static str,
    behavior: Behavior,
    kind: ErrorKind,
}

fn fault_cases(max_body: usize) -> Vec<FaultCase> {
    vec![
        FaultCase {
            name: "status 500",
            behavior: Behavior::Status(500),
            kind: ErrorKind::Status,
        },
        FaultCase {
            name: "status 404",
            behavior: Behavior::Status(404),
            kind: ErrorKind::Status,
        },
        FaultCase {
            // Lines of metrics the engine does not read are skipped unchecked
            // (`Validation::Watched`): garbage holds none of the engine's metrics.
            name: "garbage",
            behavior: Behavior::Serve(Bytes::from_static(b"<html>this is not prometheus {{{\n")),
            kind: ErrorKind::NoMetrics,
        },
        FaultCase {
            name: "malformed line of a metric the engine reads",
            behavior: Behavior::Serve(Bytes::from_static(
                b"vllm:num_requests_running 1\nvllm:num_requests_waiting{{{ 2\n",
            )),
            kind: ErrorKind::Parse,
        },
        FaultCase {
            name: "not utf-8",
            behavior: Behavior::Serve(Bytes::from_static(b"vllm:num_requests_waiting \xff\xfe\n")),
            kind: ErrorKind::Parse,
        },
        FaultCase {
            name: "empty body",
            behavior: Behavior::Serve(Bytes::new()),
            kind: ErrorKind::NoMetrics,
        },
        FaultCase {
            name: "another engine's metrics",
            behavior: Behavior::Serve(Bytes::from_static(b"sglang:num_queue_reqs 3\n")),
            kind: ErrorKind::NoMetrics,
        },
        FaultCase {
            name: "slow past the timeout",
            behavior: Behavior::Delay(Duration::from_secs(2), Bytes::from(capture(VLLM_IDLE))),
            kind: ErrorKind::Timeout,
        },
        FaultCase {
            name: "connection dropped",
            behavior: Behavior::Drop,
            kind: ErrorKind::Transport,
        },
        FaultCase {
            name: "truncated body",
            behavior: Behavior::Truncated(
                Bytes::from_static(b"vllm:num_requests_waiting 1\n"),
                5000,
            ),
            kind: ErrorKind::Transport,
        },
        FaultCase {
            name: "declared length over the cap",
            behavior: Behavior::Serve(Bytes::from(vec![b'#'; max_body + 1])),
            kind: ErrorKind::BodyTooLarge,
        },
        FaultCase {
            name: "chunked body over the cap",
            behavior: Behavior::Chunked {
                chunk: 64 << 10,
                chunks: max_body / (64 << 10) + 2,
            },
            kind: ErrorKind::BodyTooLarge,
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_is_counted_by_kind_and_leaves_the_endpoint_stale() {
    let config = fast_config();
    let max_body = config.max_body_bytes;
    let server = TestServer::start(serve(VLLM_RUNNING4)).await;
    let s = start(vec![local("vllm-0", &server)], config);
    let stats = s.handle.stats();
    let staleness = Duration::from_millis(50);

    for case in fault_cases(max_body) {
        // Healthy first: a fresh publication at the current clock time.
        server.set(serve(VLLM_RUNNING4));
        s.clock.advance(Duration::from_secs(1));
        let healthy_at = s.clock.now();
        assert!(
            wait_until(WAIT, || metrics(&s.pool, "vllm-0")
                .is_some_and(|m| m.updated_at == Some(healthy_at)))
            .await,
            "{}: not healthy before the fault",
            case.name
        );
        let before = stats
            .snapshot()
            .endpoint("vllm-0")
            .unwrap()
            .errors
            .get(case.kind);

        // Two failures in a row: no healthy poll is in flight any more (polls of one
        // endpoint never overlap), so the metrics are frozen from here on.
        server.set(case.behavior.clone());
        let errors = || {
            stats
                .snapshot()
                .endpoint("vllm-0")
                .map_or(0, |e| e.errors.get(case.kind))
        };
        assert!(
            wait_until(WAIT, || errors() >= before + 2).await,
            "{}: expected {:?} errors, got {:?}",
            case.name,
            case.kind,
            stats.snapshot().endpoint("vllm-0")
        );
        let frozen = metrics(&s.pool, "vllm-0").unwrap().updated_at;
        assert!(frozen >= Some(healthy_at), "{}", case.name);
        s.clock.advance(Duration::from_secs(1));
        let mid = errors();
        assert!(
            wait_until(WAIT, || errors() >= mid + 2).await,
            "{}",
            case.name
        );
        let m = metrics(&s.pool, "vllm-0").unwrap();
        assert_eq!(
            m.updated_at, frozen,
            "{}: refreshed by a failure",
            case.name
        );
        assert_eq!(m.running_requests_size, 4, "{}", case.name);
        assert!(m.is_stale(s.clock.now(), staleness), "{}", case.name);
        let e = stats.snapshot().endpoint("vllm-0").unwrap().clone();
        let last = e.last_error.unwrap();
        assert_eq!(last.kind(), case.kind, "{}: {last}", case.name);
        assert_eq!(last.endpoint(), "vllm-0");
        assert!(last.to_string().starts_with("scraping vllm-0: "), "{last}");
        assert!(e.consecutive_failures >= 2);
    }

    // And it recovers.
    server.set(serve(VLLM_LORA));
    s.clock.advance(Duration::from_secs(1));
    let now = s.clock.now();
    assert!(
        wait_until(WAIT, || metrics(&s.pool, "vllm-0")
            .is_some_and(|m| m.updated_at == Some(now)))
        .await
    );
    assert_eq!(metrics(&s.pool, "vllm-0").unwrap().waiting_queue_size, 8);
    let e = stats.snapshot();
    assert_eq!(e.endpoint("vllm-0").unwrap().consecutive_failures, 0);
    assert!(e.errors(ErrorKind::Status) >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_connect_errors_and_never_fresh() {
    let port = common::closed_port();
    let s = start(
        vec![Endpoint::new("gone", "127.0.0.1", port)],
        fast_config(),
    );
    let stats = s.handle.stats();
    assert!(
        wait_until(WAIT, || stats
            .snapshot()
            .endpoint("gone")
            .is_some_and(|e| e.errors.get(ErrorKind::Connect) >= 3))
        .await
    );
    let m = metrics(&s.pool, "gone").expect("discovered endpoints join the pool");
    assert_eq!(m.updated_at, None);
    let err = stats
        .snapshot()
        .endpoint("gone")
        .unwrap()
        .last_error
        .clone()
        .unwrap();
    assert!(err.is_transient());
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_metric_keeps_its_previous_value() {
    let server = TestServer::start(serve(VLLM_LORA)).await;
    let s = start(vec![local("vllm-0", &server)], fast_config());
    assert!(
        wait_until(WAIT, || metrics(&s.pool, "vllm-0")
            .is_some_and(|m| m.waiting_queue_size == 8))
        .await
    );
    server.set(Behavior::Serve(Bytes::from_static(
        b"vllm:num_requests_waiting 3\n",
    )));
    s.clock.advance(Duration::from_secs(1));
    let now = s.clock.now();
    // A healthy poll may still be in flight: wait for the new body's value.
    assert!(
        wait_until(WAIT, || metrics(&s.pool, "vllm-0")
            .is_some_and(|m| m.waiting_queue_size == 3))
        .await
    );
    let m = metrics(&s.pool, "vllm-0").unwrap();
    assert_eq!(m.updated_at, Some(now));
    assert_eq!(m.running_requests_size, 2, "kept from the previous scrape");
    assert!(m.active_adapters.len() + m.waiting_adapters.len() > 0 || m.max_active_adapters > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_label_chooses_the_mapping() {
    let sglang_text = "sglang:num_queue_reqs{model_name=\"m\"} 12\n\
                       sglang:num_running_reqs{model_name=\"m\"} 5\n\
                       sglang:token_usage{model_name=\"m\"} 0.5\n";
    let sglang = TestServer::start(Behavior::Serve(Bytes::from(sglang_text))).await;
    let unknown = TestServer::start(Behavior::Serve(Bytes::from(sglang_text))).await;
    let s = start(
        vec![
            local("sg", &sglang).with_label(DEFAULT_ENGINE_LABEL_KEY, "sglang"),
            local("tgi", &unknown).with_label(DEFAULT_ENGINE_LABEL_KEY, "tgi"),
        ],
        fast_config(),
    );
    assert!(
        wait_until(WAIT, || metrics(&s.pool, "sg")
            .is_some_and(|m| m.waiting_queue_size == 12))
        .await
    );
    let m = metrics(&s.pool, "sg").unwrap();
    assert_eq!((m.running_requests_size, m.kv_cache_usage), (5, 0.5));
    let stats = s.handle.stats();
    assert!(
        wait_until(WAIT, || stats
            .snapshot()
            .endpoint("tgi")
            .is_some_and(|e| e.errors.get(ErrorKind::Config) >= 2))
        .await
    );
    let err = stats
        .snapshot()
        .endpoint("tgi")
        .unwrap()
        .last_error
        .clone()
        .unwrap();
    assert!(!err.is_transient());
    assert!(err.to_string().contains("unknown engine \"tgi\""), "{err}");
    assert_eq!(unknown.requests(), 0, "an unknown engine is not polled");
    assert_eq!(metrics(&s.pool, "tgi").unwrap().updated_at, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_endpoints_are_published_in_batches() {
    let mut servers = Vec::new();
    for _ in 0..20 {
        servers.push(TestServer::start(serve(VLLM_RUNNING4)).await);
    }
    let endpoints = servers
        .iter()
        .enumerate()
        .map(|(i, s)| local(&format!("vllm-{i}"), s))
        .collect();
    let config = ScraperConfig {
        publish_interval: Duration::from_millis(20),
        ..fast_config()
    };
    let s = start(endpoints, config);
    let stats = s.handle.stats();
    assert!(wait_until(WAIT, || stats.snapshot().updates_applied >= 400).await);
    let snap = stats.snapshot();
    // 20 endpoints every 10 ms, at most one publication per 20 ms: ≥ 4 updates per snapshot
    // even with a generous margin for scheduling noise.
    assert!(
        snap.updates_applied >= 4 * snap.publishes,
        "{} updates in {} publications",
        snap.updates_applied,
        snap.publishes
    );
    let pool = s.pool.snapshot();
    assert_eq!(pool.len(), 20);
    assert!(
        pool.endpoints()
            .iter()
            .all(|e| e.metrics().running_requests_size == 4)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_follows_the_endpoint_file() {
    let a = TestServer::start(serve(VLLM_RUNNING4)).await;
    let b = TestServer::start(serve(VLLM_LORA)).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("endpoints.yaml");
    // Replace the file atomically, as a ConfigMap update does: a reader never sees it
    // half-written (an empty file is a valid, empty set).
    let write = |text: String| {
        let tmp = dir.path().join("endpoints.yaml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    };
    let entry = |name: &str, port: u16| {
        format!("  - name: {name}\n    address: 127.0.0.1\n    port: {port}\n")
    };
    write(format!(
        "endpoints:\n{}{}",
        entry("a", a.port),
        entry("b", b.port)
    ));

    let pool = Arc::new(Pool::new());
    let discovery = FileDiscovery::new(&path).with_poll_interval(Duration::from_millis(10));
    let handle = Scraper::new(pool.clone(), fast_config(), EngineRegistry::builtin())
        .unwrap()
        .spawn(discovery);
    let stats = handle.stats();
    let fresh = |name: &str| metrics(&pool, name).is_some_and(|m| m.updated_at.is_some());
    assert!(wait_until(WAIT, || fresh("a") && fresh("b")).await);

    // b leaves: removed from the pool and the statistics, and no longer polled.
    write(format!("endpoints:\n{}", entry("a", a.port)));
    assert!(wait_until(WAIT, || pool.snapshot().by_name("b").is_none()).await);
    assert!(wait_until(WAIT, || stats.snapshot().endpoint("b").is_none()).await);
    let b_requests = b.requests();
    let a_requests = a.requests();
    assert!(wait_until(WAIT, || a.requests() >= a_requests + 5).await);
    assert!(b.requests() <= b_requests + 1, "b still polled");

    // A broken file is reported and the last good set stays.
    write("endpoints:\n  - name: [oops\n".into());
    assert!(wait_until(WAIT, || stats.snapshot().discovery_errors >= 1).await);
    let message = stats.snapshot().last_discovery_error.unwrap();
    assert!(message.contains("endpoints.yaml"), "{message}");
    assert_eq!(pool.snapshot().len(), 1);

    // a moves to b's server: same name, new target, fresh metrics from the new server.
    write(format!("endpoints:\n{}", entry("a", b.port)));
    assert!(
        wait_until(WAIT, || pool.snapshot().by_name("a").is_some_and(|e| e
            .endpoint()
            .port()
            == b.port
            && e.metrics().waiting_queue_size == 8))
        .await
    );
    drop(handle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_stops_polling() {
    let server = TestServer::start(serve(VLLM_IDLE)).await;
    let s = start(vec![local("vllm-0", &server)], fast_config());
    assert!(wait_until(WAIT, || server.requests() >= 3).await);
    drop(s.handle);
    // Let an in-flight poll finish, then nothing more may arrive over ten intervals.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let after = server.requests();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.requests(), after);
    assert!(
        s.pool.snapshot().by_name("vllm-0").is_some(),
        "the pool keeps its contents"
    );
}

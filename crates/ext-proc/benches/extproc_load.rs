//! Load generator for `pointsman-epp`'s ext_proc stream: a tonic client over loopback drives
//! the server (started in-process, plaintext) the way Envoy does in FULL_DUPLEX_STREAMED mode —
//! request headers, body, then response headers and body — and prints requests/s and latency
//! percentiles.
//!
//! `cargo bench -p pointsman-extproc --bench extproc_load -- [--seconds N] [--concurrency N] [--client-threads N]`
//!
//! Scenarios: small chat bodies at high concurrency (throughput), 220 KB chat bodies
//! (throughput), and small bodies one at a time (added latency per request: the time from
//! sending the request headers to receiving the last echoed body chunk).
#![allow(missing_docs)]

use envoy_types::pb::envoy::service::ext_proc::v3::ProcessingRequest;
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_client::ExternalProcessorClient;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response as P;
use pointsman::EndpointPickerConfig;
use pointsman_extproc::endpoints::parse_endpoints;
use pointsman_extproc::server::{EndpointSource, ServerOptions, Tls, run};
use pointsman_extproc::stream::{ProcessorOptions, build};
use pointsman_scraper::scraper::ScraperConfig;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn chat_body(size: usize, i: u64) -> Vec<u8> {
    let filler = "lorem ipsum dolor sit amet ".repeat(size / 27 + 1);
    serde_json::to_vec(&serde_json::json!({
        "model": "llama",
        "messages": [{"role": "system", "content": &filler[..size.min(filler.len())]},
                     {"role": "user", "content": format!("question {i}")}],
    }))
    .expect("json")
}

/// One request through the stream; returns its latency.
async fn one(
    client: &mut ExternalProcessorClient<Channel>,
    body: &[u8],
) -> Result<Duration, tonic::Status> {
    let started = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::channel::<ProcessingRequest>(16);
    let _ = tx
        .send(build::request_headers(
            &[(":path", "/v1/chat/completions"), (":method", "POST")],
            false,
        ))
        .await;
    let chunks: Vec<&[u8]> = body.chunks(65_536).collect();
    for (i, c) in chunks.iter().enumerate() {
        let _ = tx.send(build::request_body(c, i + 1 == chunks.len())).await;
    }
    let mut responses = client
        .process(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    // Header response, then body chunks until end_of_stream.
    let mut got = 0usize;
    loop {
        let Some(r) = responses.message().await? else {
            return Err(tonic::Status::internal("stream ended early"));
        };
        match r.response {
            Some(P::RequestBody(b)) => {
                let m = b
                    .response
                    .and_then(|c| c.body_mutation)
                    .and_then(|m| m.mutation);
                if let Some(envoy_types::pb::envoy::service::ext_proc::v3::body_mutation::Mutation::StreamedResponse(s)) = m {
                    got += s.body.len();
                    if s.end_of_stream {
                        break;
                    }
                }
            }
            Some(P::RequestHeaders(_)) => {}
            other => return Err(tonic::Status::internal(format!("unexpected {other:?}"))),
        }
    }
    assert_eq!(got, body.len());
    let latency = started.elapsed();
    let _ = tx
        .send(build::response_headers(&[(":status", "200")], false))
        .await;
    let _ = tx
        .send(build::response_body(
            br#"{"model":"llama","usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
            true,
        ))
        .await;
    responses.message().await?;
    responses.message().await?;
    drop(tx);
    Ok(latency)
}

async fn scenario(
    name: &str,
    channels: &[Channel],
    body_size: usize,
    concurrency: u64,
    seconds: u64,
) {
    // Bodies are built before the clock starts: the load generator should spend its CPU on the
    // protocol, not on JSON. Distinct bodies per task keep prompts from being identical.
    let workers: Vec<(ExternalProcessorClient<Channel>, Vec<Vec<u8>>)> = (0..concurrency)
        .map(|t| {
            let client =
                ExternalProcessorClient::new(channels[t as usize % channels.len()].clone())
                    .max_decoding_message_size(64 << 20);
            (
                client,
                (0..8)
                    .map(|k| chat_body(body_size, t * 1_000 + k))
                    .collect(),
            )
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (mut client, bodies) in workers {
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0usize;
            while Instant::now() < deadline {
                let body = &bodies[i % bodies.len()];
                i += 1;
                match one(&mut client, body).await {
                    Ok(d) => lat.push(d),
                    Err(e) => panic!("request failed: {e}"),
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 - 1.0) * p) as usize];
    println!(
        "{name:<34} {:>9.0} req/s  n={:<7} p50={:>8.1?} p90={:>8.1?} p99={:>8.1?}",
        all.len() as f64 / elapsed,
        all.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99)
    );
}

fn main() {
    let seconds = arg("--seconds", 5);
    let concurrency = arg("--concurrency", 64);
    let grpc_port = free_port();
    let options = ServerOptions {
        grpc_addr: SocketAddr::from(([127, 0, 0, 1], grpc_port)),
        health_addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
        metrics_addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
        tls: Tls::Disabled,
        config: EndpointPickerConfig::default_config(),
        objectives: Default::default(),
        processor: ProcessorOptions::default(),
        scraper: ScraperConfig {
            interval: Duration::from_secs(1),
            ..ScraperConfig::default()
        },
        staleness: Duration::from_secs(2),
        endpoints: EndpointSource::Static(
            parse_endpoints(
                "127.0.0.2:18000,127.0.0.3:18000,127.0.0.4:18000,127.0.0.5:18000",
                &[],
            )
            .expect("endpoints"),
        ),
        pool_name: "bench".into(),
    };
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    server_rt.spawn(async move {
        if let Err(e) = run(options, std::future::pending()).await {
            eprintln!("server: {e}");
        }
    });
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(arg("--client-threads", 2) as usize)
        .enable_all()
        .build()
        .expect("runtime");
    client_rt.block_on(async move {
        let url = format!("http://127.0.0.1:{grpc_port}");
        let mut channels = Vec::new();
        for _ in 0..4 {
            let mut tries = 0;
            loop {
                match Channel::from_shared(url.clone())
                    .expect("url")
                    .tcp_nodelay(true)
                    .initial_stream_window_size(Some(8 << 20))
                    .initial_connection_window_size(Some(64 << 20))
                    .connect()
                    .await
                {
                    Ok(c) => {
                        channels.push(c);
                        break;
                    }
                    Err(_) if tries < 100 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => panic!("connect: {e}"),
                }
            }
        }
        println!(
            "pointsman-epp ext_proc load, {seconds} s per scenario, 2 server + {} client threads",
            arg("--client-threads", 2)
        );
        scenario(
            "small bodies (~130 B), warm-up",
            &channels,
            64,
            concurrency,
            1,
        )
        .await;
        scenario("small bodies (~130 B)", &channels, 64, concurrency, seconds).await;
        scenario(
            "220 KB chat bodies",
            &channels,
            220_000,
            concurrency.min(16),
            seconds,
        )
        .await;
        scenario(
            "small bodies, one at a time",
            &channels[..1],
            64,
            1,
            seconds,
        )
        .await;
    });
    drop(client_rt);
    server_rt.shutdown_timeout(Duration::from_secs(1));
}

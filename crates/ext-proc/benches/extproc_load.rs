//! Load generator for `pointsman-epp`'s ext_proc stream: a lean gRPC client over loopback
//! drives the server (started in-process, plaintext) the way Envoy does in FULL_DUPLEX_STREAMED
//! mode — one HTTP/2 stream per request: request headers, body, then response headers and body
//! — and prints requests/s, latency percentiles and CPU per request of server and client.
//!
//! `cargo bench -p pointsman-extproc --bench extproc_load -- [--seconds N] [--concurrency N]
//! [--client-threads N] [--only SUBSTRING]`
//!
//! Scenarios: small chat bodies at high concurrency (throughput), 220 KB chat bodies
//! (throughput), and small bodies one at a time (added latency per request: from opening the
//! stream to receiving the last echoed body chunk). Each runs against `pointsman-epp` and
//! against an echo ext_proc server on the same tonic transport (no parsing, no scheduling):
//! the floor the protocol itself sets on this machine, measured in the same run.
//!
//! The client is the `h2` crate used directly with every message encoded before the clock
//! starts, on one thread by default (an Envoy worker is one event-loop thread): client and
//! server share the machine's cores, and a tonic client spent as much CPU per request as the
//! server did, which capped the figures at what the two together could do.
//!
//! Figures on the 2-core CI machine (three runs, 5 s each, ranges). pointsman-epp serves on
//! its default two single-threaded worker runtimes (`--grpc-workers`); the echo floor is plain
//! tonic on a two-thread work-stealing runtime, measured in the same runs.
//!
//! | scenario | pointsman-epp | echo floor | target |
//! | --- | --- | --- | --- |
//! | small bodies, 64 streams | 21.9k–30.6k req/s | 24.1k–32.9k req/s | ≥ 20k |
//! | 220 KB chat bodies, 16 streams | 2.52k–2.84k req/s | 3.23k–3.38k req/s | ≥ 2k |
//! | small bodies, one at a time, p50 | 167–180 µs | 121–139 µs | < 200 µs |
//! | server CPU per small request | 32–44 µs | 30–43 µs | |
//!
//! With ext_proc on the shared work-stealing runtime (`--grpc-workers 0`, the previous design)
//! the same requests took 46–62 µs of server CPU and 17.5k–25.6k req/s.
//!
//! For scale: a bare TCP ping-pong between two processes on this machine takes 83 µs (p50).
#![allow(missing_docs)]

use bytes::{BufMut, Bytes, BytesMut};
use envoy_types::pb::envoy::service::ext_proc::v3::body_mutation::Mutation;
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::{
    ExternalProcessor, ExternalProcessorServer,
};
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response as P;
use envoy_types::pb::envoy::service::ext_proc::v3::{ProcessingRequest, ProcessingResponse};
use h2::client::SendRequest;
use pointsman::EndpointPickerConfig;
use pointsman_benches::cpu::ThreadCpu;
use pointsman_extproc::endpoints::parse_endpoints;
use pointsman_extproc::server::{EndpointSource, ServerOptions, Tls, run};
use pointsman_extproc::stream::{ProcessorOptions, build};
use pointsman_scraper::scraper::ScraperConfig;
use prost::Message;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

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

const PROCESS_PATH: &str = "/envoy.service.ext_proc.v3.ExternalProcessor/Process";

/// gRPC length-prefixed frames of `messages`, back to back.
fn grpc_frames(messages: &[ProcessingRequest]) -> Bytes {
    let mut out = BytesMut::new();
    for m in messages {
        out.put_u8(0);
        out.put_u32(u32::try_from(m.encoded_len()).expect("message under 4 GiB"));
        m.encode(&mut out).expect("BytesMut grows");
    }
    out.freeze()
}

/// One request's messages, encoded before the clock starts: request headers and body (in
/// chunks of 64 KiB) as Envoy sends them, then the upstream's response headers and body.
struct Exchange {
    request: Bytes,
    response: Bytes,
    body_len: usize,
}

impl Exchange {
    fn new(body: &[u8]) -> Self {
        let mut request = vec![build::request_headers(
            &[(":path", "/v1/chat/completions"), (":method", "POST")],
            false,
        )];
        let chunks: Vec<&[u8]> = body.chunks(65_536).collect();
        for (i, c) in chunks.iter().enumerate() {
            request.push(build::request_body(c, i + 1 == chunks.len()));
        }
        let response = [
            build::response_headers(&[(":status", "200")], false),
            build::response_body(
                br#"{"model":"llama","usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
                true,
            ),
        ];
        Exchange {
            request: grpc_frames(&request),
            response: grpc_frames(&response),
            body_len: body.len(),
        }
    }
}

/// The responses of one stream, decoded as they arrive.
struct Responses {
    body: h2::RecvStream,
    buf: BytesMut,
}

impl Responses {
    async fn next(&mut self) -> Result<ProcessingResponse, String> {
        loop {
            if let Some(len) = self.buf.get(1..5) {
                let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
                if self.buf.len() >= 5 + len {
                    let frame = self.buf.split_to(5 + len);
                    return ProcessingResponse::decode(&frame[5..]).map_err(|e| e.to_string());
                }
            }
            match self.body.data().await {
                Some(Ok(chunk)) => {
                    let _ = self.body.flow_control().release_capacity(chunk.len());
                    self.buf.extend_from_slice(&chunk);
                }
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("stream ended early (gRPC error status?)".into()),
            }
        }
    }
}

/// One request through its own ext_proc stream; returns its latency: from opening the stream
/// to receiving the last echoed body chunk.
async fn one(
    connection: &SendRequest<Bytes>,
    uri: &str,
    exchange: &Exchange,
) -> Result<Duration, String> {
    let error = |e: h2::Error| e.to_string();
    let started = Instant::now();
    let mut send = connection.clone().ready().await.map_err(error)?;
    let request = http::Request::post(uri)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .map_err(|e| e.to_string())?;
    let (head, mut stream) = send.send_request(request, false).map_err(error)?;
    stream
        .send_data(exchange.request.clone(), false)
        .map_err(error)?;
    let head = head.await.map_err(error)?;
    let mut responses = Responses {
        body: head.into_body(),
        buf: BytesMut::new(),
    };
    // The headers response, then body chunks until end_of_stream.
    let mut got = 0usize;
    loop {
        match responses.next().await?.response {
            Some(P::RequestBody(b)) => {
                if let Some(Mutation::StreamedResponse(s)) = b
                    .response
                    .and_then(|c| c.body_mutation)
                    .and_then(|m| m.mutation)
                {
                    got += s.body.len();
                    if s.end_of_stream {
                        break;
                    }
                }
            }
            Some(P::RequestHeaders(_)) => {}
            other => return Err(format!("unexpected {other:?}")),
        }
    }
    if got != exchange.body_len {
        return Err(format!("{got} body bytes echoed of {}", exchange.body_len));
    }
    let latency = started.elapsed();
    stream
        .send_data(exchange.response.clone(), true)
        .map_err(error)?;
    responses.next().await?;
    responses.next().await?;
    while let Some(chunk) = responses.body.data().await {
        chunk.map_err(error)?;
    }
    responses.body.trailers().await.map_err(error)?;
    Ok(latency)
}

async fn scenario(
    name: &str,
    connections: &[(SendRequest<Bytes>, String)],
    body_size: usize,
    concurrency: u64,
    seconds: u64,
) {
    // Messages are built and encoded before the clock starts: the load generator should spend
    // its CPU on the protocol, not on JSON or protobuf. Distinct bodies per task keep prompts
    // from being identical.
    let workers: Vec<(SendRequest<Bytes>, String, Vec<Exchange>)> = (0..concurrency)
        .map(|t| {
            let (connection, uri) = &connections[t as usize % connections.len()];
            let exchanges = (0..8)
                .map(|k| Exchange::new(&chat_body(body_size, t * 1_000 + k)))
                .collect();
            (connection.clone(), uri.clone(), exchanges)
        })
        .collect();
    let cpu_before = ThreadCpu::now();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (connection, uri, exchanges) in workers {
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0usize;
            while Instant::now() < deadline {
                let exchange = &exchanges[i % exchanges.len()];
                i += 1;
                match one(&connection, &uri, exchange).await {
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
    let cpu_after = ThreadCpu::now();
    let per_request = |prefix: &str| 1e6 * cpu_after.since(&cpu_before, prefix) / all.len() as f64;
    // The server's runtime, plus pointsman-epp's own ext_proc worker threads.
    let server_cpu = per_request("epp-server") + per_request("grpc-worker");
    let client_cpu = per_request("load-client");
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 - 1.0) * p) as usize];
    println!(
        "{name:<46} {:>7.0} req/s  n={:<7} p50={:>8.1?} p90={:>8.1?} p99={:>8.1?}  \
         CPU/req: server {server_cpu:.1} µs, client {client_cpu:.1} µs",
        all.len() as f64 / elapsed,
        all.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99)
    );
}

/// The transport floor: an ext_proc server doing the least Envoy needs (answer headers, echo
/// the body as one streamed chunk), no parsing and no scheduling, on the same tonic settings.
/// Its figures, measured in the same run, separate the protocol's cost from the picker's.
#[derive(Default)]
struct EchoProcessor;

#[tonic::async_trait]
impl ExternalProcessor for EchoProcessor {
    type ProcessStream = std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<ProcessingResponse, tonic::Status>> + Send>,
    >;

    async fn process(
        &self,
        request: tonic::Request<tonic::Streaming<ProcessingRequest>>,
    ) -> Result<tonic::Response<Self::ProcessStream>, tonic::Status> {
        use envoy_types::pb::envoy::service::ext_proc::v3::{
            BodyMutation, BodyResponse, CommonResponse, HeadersResponse, StreamedBodyResponse,
            body_mutation::Mutation, processing_request::Request as Q,
        };
        let inbound = request.into_inner();
        let stream = futures_util::stream::unfold(inbound, |mut inbound| async move {
            let msg = inbound.message().await.ok()??;
            let headers = || Some(HeadersResponse::default());
            let echo = |body: Vec<u8>, end_of_stream: bool| {
                Some(BodyResponse {
                    response: Some(CommonResponse {
                        body_mutation: Some(BodyMutation {
                            mutation: Some(Mutation::StreamedResponse(StreamedBodyResponse {
                                body,
                                end_of_stream,
                                ..Default::default()
                            })),
                        }),
                        ..Default::default()
                    }),
                })
            };
            let response = match msg.request? {
                Q::RequestHeaders(_) => P::RequestHeaders(headers()?),
                Q::ResponseHeaders(_) => P::ResponseHeaders(headers()?),
                Q::RequestBody(b) => P::RequestBody(echo(b.body, b.end_of_stream)?),
                Q::ResponseBody(b) => P::ResponseBody(echo(b.body, b.end_of_stream)?),
                _ => return None,
            };
            Some((
                Ok(ProcessingResponse {
                    response: Some(response),
                    ..Default::default()
                }),
                inbound,
            ))
        });
        Ok(tonic::Response::new(Box::pin(stream)))
    }
}

/// A lean gRPC client connection: the `h2` crate directly (no tonic, tower or hyper layers),
/// windows sized as the server's.
async fn connect(port: u16) -> (SendRequest<Bytes>, String) {
    let mut tries = 0;
    let tcp = loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(tcp) => break tcp,
            Err(_) if tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("connect: {e}"),
        }
    };
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(8 << 20)
        .initial_connection_window_size(64 << 20)
        .handshake::<_, Bytes>(tcp)
        .await
        .expect("HTTP/2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    (send, format!("http://127.0.0.1:{port}{PROCESS_PATH}"))
}

fn main() {
    let seconds = arg("--seconds", 5);
    let concurrency = arg("--concurrency", 64);
    let client_threads = arg("--client-threads", 1) as usize;
    let only: Option<String> = {
        let args: Vec<String> = std::env::args().collect();
        args.iter()
            .position(|a| a == "--only")
            .and_then(|i| args.get(i + 1).cloned())
    };
    let wanted = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    let grpc_port = free_port();
    let echo_port = free_port();
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
        grpc_workers: arg("--grpc-workers", 2) as usize,
    };
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("epp-server")
        .enable_all()
        .build()
        .expect("runtime");
    server_rt.spawn(async move {
        if let Err(e) = run(options, std::future::pending()).await {
            eprintln!("server: {e}");
        }
    });
    server_rt.spawn(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", echo_port))
            .await
            .expect("bind echo");
        tonic::transport::Server::builder()
            .initial_stream_window_size(Some(8 << 20))
            .initial_connection_window_size(Some(64 << 20))
            .add_service(ExternalProcessorServer::new(EchoProcessor))
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            )
            .await
            .expect("echo server");
    });
    println!(
        "pointsman-epp ext_proc load, {seconds} s per scenario, 2 server threads; \
         throughput with {client_threads} client threads, latency with one client thread"
    );
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(client_threads)
        .thread_name("load-client")
        .enable_all()
        .build()
        .expect("runtime");
    client_rt.block_on(async {
        for (server, port) in [("pointsman-epp", grpc_port), ("echo floor", echo_port)] {
            let mut channels = Vec::new();
            for _ in 0..4 {
                channels.push(connect(port).await);
            }
            let small = format!("{server}: small bodies (~130 B)");
            if wanted(&small) {
                scenario(&format!("{small}, warm-up"), &channels, 64, concurrency, 1).await;
                scenario(&small, &channels, 64, concurrency, seconds).await;
            }
            let large = format!("{server}: 220 KB chat bodies");
            if wanted(&large) {
                scenario(&large, &channels, 220_000, concurrency.min(16), seconds).await;
            }
        }
    });
    drop(client_rt);
    // Added latency: one request at a time from a single-threaded client, as an Envoy worker
    // (one event-loop thread) sends them; a multi-threaded client would add its own thread
    // hand-offs to every figure.
    let latency_client = std::thread::Builder::new()
        .name("load-client".into())
        .spawn(move || {
            let wanted = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
            let latency_rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            latency_rt.block_on(async {
                for (server, port) in [("pointsman-epp", grpc_port), ("echo floor", echo_port)] {
                    let name = format!("{server}: small bodies, one at a time");
                    if wanted(&name) {
                        let channel = connect(port).await;
                        scenario(
                            &format!("{name}, warm-up"),
                            std::slice::from_ref(&channel),
                            64,
                            1,
                            1,
                        )
                        .await;
                        scenario(&name, &[channel], 64, 1, seconds).await;
                    }
                }
            });
        })
        .expect("client thread");
    latency_client.join().expect("latency client");
    server_rt.shutdown_timeout(Duration::from_secs(1));
}

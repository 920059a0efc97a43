//! `run` end to end over loopback, on the shared runtime and on dedicated worker runtimes:
//! a request gets its destination, the body comes back whole, and shutdown ends `run`.
#![allow(clippy::unwrap_used)]

use envoy_types::pb::envoy::service::ext_proc::v3::ProcessingRequest;
use envoy_types::pb::envoy::service::ext_proc::v3::body_mutation::Mutation;
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_client::ExternalProcessorClient;
use envoy_types::pb::envoy::service::ext_proc::v3::processing_response::Response as P;
use pointsman::EndpointPickerConfig;
use pointsman_extproc::endpoints::parse_endpoints;
use pointsman_extproc::server::{EndpointSource, ServerOptions, Tls, run};
use pointsman_extproc::stream::{ProcessorOptions, build};
use pointsman_scraper::scraper::ScraperConfig;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends one chat request on its own stream; returns the destination header and the echoed
/// body.
async fn one(port: u16, body: &[u8]) -> (String, Vec<u8>) {
    let mut client = loop {
        match ExternalProcessorClient::connect(format!("http://127.0.0.1:{port}")).await {
            Ok(c) => break c,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let messages: Vec<ProcessingRequest> = vec![
        build::request_headers(
            &[(":path", "/v1/chat/completions"), (":method", "POST")],
            false,
        ),
        build::request_body(body, true),
    ];
    let mut responses = client
        .process(tokio_stream::iter(messages))
        .await
        .unwrap()
        .into_inner();
    let (mut destination, mut echoed) = (String::new(), Vec::new());
    while let Some(r) = responses.message().await.unwrap() {
        match r.response.unwrap() {
            P::RequestHeaders(h) => {
                for option in h.response.unwrap().header_mutation.unwrap().set_headers {
                    let header = option.header.unwrap();
                    if header.key == "x-gateway-destination-endpoint" {
                        destination = String::from_utf8(header.raw_value).unwrap();
                    }
                }
            }
            P::RequestBody(b) => {
                let Some(Mutation::StreamedResponse(s)) =
                    b.response.unwrap().body_mutation.unwrap().mutation
                else {
                    panic!("body not streamed back");
                };
                echoed.extend_from_slice(&s.body);
                if s.end_of_stream {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    (destination, echoed)
}

async fn serve_and_request(grpc_workers: usize) {
    let port = free_port();
    let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let options = ServerOptions {
        grpc_addr: local(port),
        health_addr: local(free_port()),
        metrics_addr: local(free_port()),
        tls: Tls::Disabled,
        config: EndpointPickerConfig::default_config(),
        objectives: Default::default(),
        processor: ProcessorOptions::default(),
        scraper: ScraperConfig::default(),
        staleness: Duration::from_secs(2),
        endpoints: EndpointSource::Static(parse_endpoints("10.9.8.7:8000", &[]).unwrap()),
        pool_name: "test".into(),
        grpc_workers,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(options, async {
        let _ = stopped.await;
    }));
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    // Several connections, so that each worker gets some.
    for _ in 0..4 {
        let (destination, echoed) = one(port, body).await;
        assert_eq!(destination, "10.9.8.7:8000");
        assert_eq!(echoed, body);
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("run ends after shutdown")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_on_the_shared_runtime() {
    serve_and_request(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_on_worker_runtimes() {
    serve_and_request(2).await;
}

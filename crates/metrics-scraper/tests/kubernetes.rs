//! Kubernetes discovery through kube-rs's client against an in-process mock API server on
//! 127.0.0.1 that answers list and `?watch=true` requests for Pods and InferencePools with
//! real Kubernetes JSON and watch-event streams.
#![cfg(feature = "kubernetes")]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use common::WAIT;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use pointsman_scraper::discovery::kubernetes::{KubernetesDiscovery, PodSource};
use pointsman_scraper::discovery::{Discovery, EndpointSet, EndpointSink};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

const PODS: &str = "/api/v1/namespaces/default/pods";
const POOLS: &str = "/apis/inference.networking.k8s.io/v1/namespaces/default/inferencepools";

#[derive(Default)]
struct State {
    rv: u64,
    objects: BTreeMap<(&'static str, String), Value>,
    log: Vec<(u64, &'static str, &'static str, Value)>,
    watchers: Vec<(&'static str, mpsc::UnboundedSender<Bytes>)>,
}

/// The mock API server.
struct ApiServer {
    port: u16,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap();
    line.push(b'\n');
    Bytes::from(line)
}

impl ApiServer {
    async fn start() -> ApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(s.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        ApiServer { port, state, task }
    }

    fn client(&self) -> kube::Client {
        let url = format!("http://127.0.0.1:{}", self.port).parse().unwrap();
        kube::Client::try_from(kube::Config::new(url)).unwrap()
    }

    /// Creates or replaces an object and tells the watchers.
    fn apply(&self, collection: &'static str, mut object: Value) {
        let mut st = self.state.lock();
        st.rv += 1;
        let rv = st.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        let kind = if st.objects.contains_key(&(collection, name.clone())) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        st.objects.insert((collection, name), object.clone());
        broadcast(&mut st, rv, collection, kind, object);
    }

    fn delete(&self, collection: &'static str, name: &str) {
        let mut st = self.state.lock();
        st.rv += 1;
        let rv = st.rv;
        let mut object = st.objects.remove(&(collection, name.to_owned())).unwrap();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        broadcast(&mut st, rv, collection, "DELETED", object);
    }
}

fn broadcast(st: &mut State, rv: u64, collection: &'static str, kind: &'static str, object: Value) {
    let line = event_line(kind, &object);
    st.watchers
        .retain(|(c, tx)| *c != collection || tx.send(line.clone()).is_ok());
    st.log.push((rv, collection, kind, object));
}

type ApiBody = BoxBody<Bytes, Infallible>;

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<ApiBody>, Infallible> {
    let collection = match req.uri().path() {
        PODS => PODS,
        POOLS => POOLS,
        other => {
            let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                              "reason": "NotFound", "code": 404,
                              "message": format!("{other} not found")});
            return Ok(Response::builder()
                .status(404)
                .body(full(body.to_string()))
                .unwrap());
        }
    };
    let query = req.uri().query().unwrap_or_default().to_owned();
    let param = |key: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .map(str::to_owned)
    };
    let mut st = state.lock();
    if param("watch").as_deref() == Some("true") {
        let since: u64 = param("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let (tx, rx) = mpsc::unbounded_channel();
        for (rv, c, kind, object) in &st.log {
            if *c == collection && *rv > since {
                let _ = tx.send(event_line(kind, object));
            }
        }
        st.watchers.push((collection, tx));
        return Ok(Response::builder()
            .header("content-type", "application/json")
            .body(WatchBody(rx).boxed())
            .unwrap());
    }
    let items: Vec<Value> = st
        .objects
        .iter()
        .filter(|((c, _), _)| *c == collection)
        .map(|(_, v)| v.clone())
        .collect();
    let (api_version, kind) = if collection == PODS {
        ("v1", "PodList")
    } else {
        ("inference.networking.k8s.io/v1", "InferencePoolList")
    };
    let list = json!({"apiVersion": api_version, "kind": kind,
                      "metadata": {"resourceVersion": st.rv.to_string()}, "items": items});
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(full(list.to_string()))
        .unwrap())
}

fn full(text: String) -> ApiBody {
    http_body_util::Full::new(Bytes::from(text)).boxed()
}

/// A never-ending watch stream fed by the server.
struct WatchBody(mpsc::UnboundedReceiver<Bytes>);

impl Body for WatchBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|line| line.map(|l| Ok(Frame::data(l))))
    }
}

fn pod(name: &str, ip: &str, ready: bool, labels: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                     "labels": labels},
        "spec": {"containers": [{"name": "server", "image": "vllm/vllm-openai"}]},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]
        }
    })
}

fn pool(labels: Value, ports: &[u16]) -> Value {
    let ports: Vec<Value> = ports.iter().map(|p| json!({"number": p})).collect();
    json!({
        "apiVersion": "inference.networking.k8s.io/v1",
        "kind": "InferencePool",
        "metadata": {"name": "llama", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": labels},
            "targetPorts": ports,
            "endpointPickerRef": {"name": "epp", "port": {"number": 9002}}
        }
    })
}

/// `name@address:port` of every endpoint, sorted.
fn view(set: &EndpointSet) -> Vec<String> {
    let mut v: Vec<String> = set
        .iter()
        .map(|e| format!("{}@{}", e.name(), e.host_port()))
        .collect();
    v.sort();
    v
}

async fn expect(rx: &mut watch::Receiver<Option<EndpointSet>>, want: &[&str]) {
    let got = tokio::time::timeout(
        WAIT,
        rx.wait_for(|set| set.as_ref().is_some_and(|s| view(s) == want)),
    )
    .await
    .is_ok();
    assert!(
        got,
        "expected {want:?}, last set {:?}",
        rx.borrow().as_ref().map(view)
    );
}

fn spawn_discovery(
    mut discovery: KubernetesDiscovery,
) -> (
    EndpointSink,
    watch::Receiver<Option<EndpointSet>>,
    tokio::task::JoinHandle<()>,
) {
    let (sink, rx) = EndpointSink::new();
    let s = sink.clone();
    let task = tokio::spawn(async move {
        let _ = discovery.run(&s).await;
    });
    (sink, rx, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inference_pool_pods_become_endpoints_as_they_change() {
    let api = ApiServer::start().await;
    api.apply(POOLS, pool(json!({"app": "vllm"}), &[8000, 8001]));
    api.apply(
        PODS,
        pod(
            "p1",
            "10.0.0.1",
            true,
            json!({"app": "vllm", "inference.networking.k8s.io/engine-type": "vllm"}),
        ),
    );
    api.apply(PODS, pod("p2", "10.0.0.2", false, json!({"app": "vllm"})));
    api.apply(PODS, pod("p3", "10.0.0.3", true, json!({"app": "other"})));
    let mut p4 = pod("p4", "10.0.0.4", true, json!({"app": "vllm"}));
    p4["metadata"]["annotations"] = json!({"inference.networking.k8s.io/active-ports": "8001"});
    api.apply(PODS, p4.clone());

    let discovery = KubernetesDiscovery::new(
        api.client(),
        "default",
        PodSource::InferencePool {
            name: "llama".into(),
        },
    );
    let (sink, mut rx, task) = spawn_discovery(discovery);

    // Ready, selected pods only; p4's annotation keeps only port 8001 (rank 1).
    expect(
        &mut rx,
        &[
            "p1-rank-0@10.0.0.1:8000",
            "p1-rank-1@10.0.0.1:8001",
            "p4-rank-1@10.0.0.4:8001",
        ],
    )
    .await;
    let set = rx.borrow().clone().unwrap();
    let p1 = set.iter().find(|e| e.name() == "p1-rank-0").unwrap();
    assert_eq!(
        p1.label("inference.networking.k8s.io/engine-type"),
        Some("vllm")
    );

    // p2 becomes Ready.
    api.apply(PODS, pod("p2", "10.0.0.2", true, json!({"app": "vllm"})));
    expect(
        &mut rx,
        &[
            "p1-rank-0@10.0.0.1:8000",
            "p1-rank-1@10.0.0.1:8001",
            "p2-rank-0@10.0.0.2:8000",
            "p2-rank-1@10.0.0.2:8001",
            "p4-rank-1@10.0.0.4:8001",
        ],
    )
    .await;

    // p1 loses readiness; p2 is deleted; p4 starts terminating.
    api.apply(PODS, pod("p1", "10.0.0.1", false, json!({"app": "vllm"})));
    api.delete(PODS, "p2");
    p4["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    api.apply(PODS, p4);
    expect(&mut rx, &[]).await;

    // The pool now selects app=other on one port: p3 joins.
    api.apply(POOLS, pool(json!({"app": "other"}), &[9000]));
    expect(&mut rx, &["p3-rank-0@10.0.0.3:9000"]).await;

    // The pool is deleted: nothing is selected.
    api.delete(POOLS, "llama");
    expect(&mut rx, &[]).await;
    assert_eq!(sink.errors_reported(), 0);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_selector_needs_no_crd() {
    let api = ApiServer::start().await;
    api.apply(
        PODS,
        pod("a", "10.0.1.1", true, json!({"app": "vllm", "tier": "gpu"})),
    );
    api.apply(PODS, pod("b", "10.0.1.2", true, json!({"app": "vllm"})));
    let discovery = KubernetesDiscovery::new(
        api.client(),
        "default",
        PodSource::Selector {
            match_labels: [("app".into(), "vllm".into()), ("tier".into(), "gpu".into())]
                .into_iter()
                .collect(),
            target_ports: vec![8000],
        },
    );
    let (_sink, mut rx, task) = spawn_discovery(discovery);
    expect(&mut rx, &["a-rank-0@10.0.1.1:8000"]).await;
    api.apply(
        PODS,
        pod("b", "10.0.1.2", true, json!({"app": "vllm", "tier": "gpu"})),
    );
    expect(
        &mut rx,
        &["a-rank-0@10.0.1.1:8000", "b-rank-0@10.0.1.2:8000"],
    )
    .await;
    task.abort();
}

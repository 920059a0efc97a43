//! Endpoints from Kubernetes: an InferencePool's Pods, or Pods matching a label selector
//! (the reference's standalone `--endpoint-selector` mode). Feature `kubernetes`.
//!
//! Rules (`epp-reference.md` §5.5, the reference's `pod_reconciler.go` and `datastore.go`):
//!
//! - The InferencePool (`inference.networking.k8s.io/v1`, one named object in the namespace)
//!   gives `spec.selector.matchLabels` and `spec.targetPorts[].number`. In standalone mode the
//!   labels and ports are given directly.
//! - A Pod is used iff its labels include every selector label, its `Ready` condition is
//!   `True`, it has an IP, and it has no deletion timestamp.
//! - Each active target port at index `i` of `targetPorts` gives an endpoint named
//!   `<pod>-rank-<i>` at `podIP:port`, carrying the Pod's labels (so the engine label on a
//!   Pod chooses its metrics mapping). The annotation
//!   `inference.networking.k8s.io/active-ports: "8000,8001"` restricts the active ports; a
//!   value that names no target port leaves the Pod without endpoints.
//! - Pods and the pool are watched (list, then watch, re-listing after errors with kube-rs's
//!   default backoff); every change republishes the whole set, so a selector or port change
//!   drops orphaned ranks at once. Nothing is published before both initial lists arrived.
//!   A deleted pool empties the set.

use std::collections::{BTreeMap, HashMap};

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, GroupVersionKind};
use kube::discovery::ApiResource;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use pointsman::Endpoint;

use super::{Discovery, DiscoveryError, EndpointSink};

/// The InferencePool API group.
pub const INFERENCE_POOL_GROUP: &str = "inference.networking.k8s.io";
/// The InferencePool API version.
pub const INFERENCE_POOL_VERSION: &str = "v1";
/// The annotation restricting a Pod's active ports.
pub const ACTIVE_PORTS_ANNOTATION: &str = "inference.networking.k8s.io/active-ports";

/// What selects the Pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodSource {
    /// The InferencePool of this name in the namespace.
    InferencePool {
        /// The pool's `metadata.name`.
        name: String,
    },
    /// Standalone mode: these labels and ports, no CRD.
    Selector {
        /// Labels a Pod must carry (`--endpoint-selector k=v,k2=v2`).
        match_labels: BTreeMap<String, String>,
        /// Serving ports, 1 to 8 (`--endpoint-target-ports`).
        target_ports: Vec<u16>,
    },
}

/// Discovery of Pods through the Kubernetes API.
///
/// ```no_run
/// use pointsman_scraper::discovery::kubernetes::{KubernetesDiscovery, PodSource};
/// # async fn f() -> Result<(), kube::Error> {
/// let client = kube::Client::try_default().await?;
/// let discovery = KubernetesDiscovery::new(client, "default",
///     PodSource::InferencePool { name: "vllm-llama3-8b".into() });
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct KubernetesDiscovery {
    client: kube::Client,
    namespace: String,
    source: PodSource,
}

impl std::fmt::Debug for KubernetesDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesDiscovery")
            .field("namespace", &self.namespace)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl KubernetesDiscovery {
    /// Watches Pods in `namespace` selected by `source`.
    pub fn new(client: kube::Client, namespace: impl Into<String>, source: PodSource) -> Self {
        Self {
            client,
            namespace: namespace.into(),
            source,
        }
    }
}

/// The parts of an InferencePool's spec that discovery uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolSelector {
    /// `spec.selector.matchLabels`.
    pub match_labels: BTreeMap<String, String>,
    /// `spec.targetPorts[].number`.
    pub target_ports: Vec<u16>,
}

impl PoolSelector {
    /// Reads `spec` of an InferencePool object.
    ///
    /// # Errors
    ///
    /// A message naming the field that is missing or malformed.
    pub fn from_pool_json(object: &serde_json::Value) -> Result<Self, String> {
        let spec = object.get("spec").ok_or("spec: missing")?;
        let labels = spec
            .pointer("/selector/matchLabels")
            .and_then(|v| v.as_object())
            .ok_or("spec.selector.matchLabels: expected a map")?;
        let mut match_labels = BTreeMap::new();
        for (k, v) in labels {
            let v = v
                .as_str()
                .ok_or_else(|| format!("spec.selector.matchLabels.{k}: expected a string"))?;
            match_labels.insert(k.clone(), v.to_owned());
        }
        let ports = spec
            .get("targetPorts")
            .and_then(|v| v.as_array())
            .ok_or("spec.targetPorts: expected a list")?;
        let mut target_ports = Vec::with_capacity(ports.len());
        for (i, p) in ports.iter().enumerate() {
            let n = p
                .get("number")
                .and_then(|n| n.as_u64())
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("spec.targetPorts[{i}].number: expected 1..=65535"))?;
            target_ports.push(n);
        }
        Ok(Self {
            match_labels,
            target_ports,
        })
    }
}

/// The endpoints of one Pod under `selector` (none if it is not selected or not ready).
pub fn pod_endpoints(pod: &Pod, selector: &PoolSelector) -> Vec<Endpoint> {
    let meta = &pod.metadata;
    let Some(name) = meta.name.as_deref() else {
        return Vec::new();
    };
    if meta.deletion_timestamp.is_some() {
        return Vec::new();
    }
    let labels = meta.labels.clone().unwrap_or_default();
    if selector
        .match_labels
        .iter()
        .any(|(k, v)| labels.get(k) != Some(v))
    {
        return Vec::new();
    }
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let Some(ip) = status
        .and_then(|s| s.pod_ip.as_deref())
        .filter(|ip| !ip.is_empty())
    else {
        return Vec::new();
    };
    if !ready {
        return Vec::new();
    }
    let active: Option<Vec<u16>> = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(ACTIVE_PORTS_ANNOTATION))
        .map(|v| v.split(',').filter_map(|p| p.trim().parse().ok()).collect());
    selector
        .target_ports
        .iter()
        .enumerate()
        .filter(|(_, port)| active.as_ref().is_none_or(|a| a.contains(port)))
        .map(|(i, port)| {
            Endpoint::new(format!("{name}-rank-{i}"), ip, *port).with_labels(labels.clone())
        })
        .collect()
}

fn pool_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        INFERENCE_POOL_GROUP,
        INFERENCE_POOL_VERSION,
        "InferencePool",
    ))
}

/// A watched collection: the current objects, and the initial list in progress.
#[derive(Debug)]
struct Store<K> {
    objects: HashMap<String, K>,
    pending: Option<HashMap<String, K>>,
    synced: bool,
}

impl<K: kube::Resource> Store<K> {
    fn new() -> Self {
        Self {
            objects: HashMap::new(),
            pending: None,
            synced: false,
        }
    }

    fn apply(&mut self, event: Event<K>) {
        let key = |k: &K| k.meta().name.clone().unwrap_or_default();
        match event {
            Event::Init => self.pending = Some(HashMap::new()),
            Event::InitApply(k) => {
                let pending = self.pending.get_or_insert_with(HashMap::new);
                pending.insert(key(&k), k);
            }
            Event::InitDone => {
                self.objects = self.pending.take().unwrap_or_default();
                self.synced = true;
            }
            Event::Apply(k) => {
                self.objects.insert(key(&k), k);
            }
            Event::Delete(k) => {
                self.objects.remove(&key(&k));
            }
        }
    }
}

enum Change {
    Pod(Box<Result<Event<Pod>, watcher::Error>>),
    Pool(Box<Result<Event<DynamicObject>, watcher::Error>>),
}

impl Discovery for KubernetesDiscovery {
    async fn run(&mut self, sink: &EndpointSink) -> Result<(), DiscoveryError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let pod_stream: BoxStream<'static, Change> =
            watcher::watcher(pods, watcher::Config::default())
                .default_backoff()
                .map(|e| Change::Pod(Box::new(e)))
                .boxed();
        let (pool_stream, pool_name, fixed): (BoxStream<'static, Change>, _, _) = match &self.source
        {
            PodSource::InferencePool { name } => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(self.client.clone(), &self.namespace, &pool_resource());
                let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
                (
                    watcher::watcher(api, config)
                        .default_backoff()
                        .map(|e| Change::Pool(Box::new(e)))
                        .boxed(),
                    Some(name.clone()),
                    None,
                )
            }
            PodSource::Selector {
                match_labels,
                target_ports,
            } => (
                futures_util::stream::pending().boxed(),
                None,
                Some(PoolSelector {
                    match_labels: match_labels.clone(),
                    target_ports: target_ports.clone(),
                }),
            ),
        };
        let mut pod_store: Store<Pod> = Store::new();
        let mut pool_store: Store<DynamicObject> = Store::new();
        let mut changes = futures_util::stream::select(pod_stream, pool_stream);
        let mut last_pool_problem: Option<String> = None;
        while let Some(change) = changes.next().await {
            let result = match change {
                Change::Pod(e) => (*e).map(|e| pod_store.apply(e)),
                Change::Pool(e) => (*e).map(|e| pool_store.apply(e)),
            };
            match result {
                Ok(()) => {}
                Err(e) => {
                    sink.report_error(&DiscoveryError::Kubernetes {
                        message: format!("watching in namespace {}: {e}", self.namespace),
                        transient: true,
                    });
                    continue;
                }
            }
            let selector = match (&fixed, &pool_name) {
                (Some(fixed), _) => fixed.clone(),
                (None, Some(name)) => {
                    if !pool_store.synced {
                        continue;
                    }
                    let pool = pool_store.objects.get(name);
                    let parsed = pool.map(|p| {
                        let json = serde_json::to_value(&p.data).unwrap_or_default();
                        PoolSelector::from_pool_json(&json)
                    });
                    match parsed {
                        None => PoolSelector::default(),
                        Some(Ok(selector)) => {
                            last_pool_problem = None;
                            selector
                        }
                        Some(Err(problem)) => {
                            if last_pool_problem.as_deref() != Some(problem.as_str()) {
                                sink.report_error(&DiscoveryError::Kubernetes {
                                    message: format!(
                                        "InferencePool {}/{name}: {problem}",
                                        self.namespace
                                    ),
                                    transient: false,
                                });
                                last_pool_problem = Some(problem);
                            }
                            continue;
                        }
                    }
                }
                (None, None) => PoolSelector::default(),
            };
            if !pod_store.synced {
                continue;
            }
            let mut endpoints: Vec<Endpoint> = pod_store
                .objects
                .values()
                .flat_map(|pod| pod_endpoints(pod, &selector))
                .collect();
            endpoints.sort_by(|a, b| a.name().cmp(b.name()));
            sink.publish(endpoints);
        }
        Err(DiscoveryError::Kubernetes {
            message: "watch streams ended".into(),
            transient: true,
        })
    }
}

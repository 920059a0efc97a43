//! Endpoints: the model-server ports the scheduler chooses between.
//!
//! An [`Endpoint`] is what discovery knows about a server (name, address, port, labels, role).
//! The pool gives every endpoint a dense [`EndpointId`] (a slot number, reused after removal, so
//! sets of endpoints fit in bitsets and per-endpoint state in plain vectors) and a
//! never-reused [`EndpointUid`] so that stateful plugins can tell a new endpoint in an old slot
//! from the one they remember.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// The label whose value gives an endpoint's [`Role`] (llm-d's convention).
pub const ROLE_LABEL: &str = "llm-d.ai/role";

/// A dense slot number for an endpoint in a [`Pool`](crate::pool::Pool); reused after the
/// endpoint is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointId(pub(crate) u32);

impl EndpointId {
    /// The slot number, usable as an index into per-endpoint vectors.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The id of slot `index`.
    pub const fn from_index(index: u32) -> Self {
        EndpointId(index)
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A number that identifies one incarnation of an endpoint and is never reused by its pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointUid(pub(crate) u64);

impl EndpointUid {
    /// A uid from its raw value (for using [`PrefixIndex`](crate::prefix::PrefixIndex) and
    /// similar per-endpoint structures outside a pool).
    pub const fn from_raw(raw: u64) -> Self {
        EndpointUid(raw)
    }

    /// The raw value.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// What an endpoint does in a disaggregated deployment, from the label [`ROLE_LABEL`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Role {
    /// No role label: serves whole requests.
    #[default]
    Unspecified,
    /// `decode`.
    Decode,
    /// `prefill`.
    Prefill,
    /// `both` or `prefill-decode`.
    PrefillDecode,
    /// `encode`.
    Encode,
    /// `encode-prefill`.
    EncodePrefill,
    /// `encode-prefill-decode`.
    EncodePrefillDecode,
    /// Any other value.
    Other(Arc<str>),
}

impl Role {
    /// Parses a role label value.
    pub fn from_label(value: &str) -> Role {
        match value {
            "" => Role::Unspecified,
            "decode" => Role::Decode,
            "prefill" => Role::Prefill,
            "both" | "prefill-decode" => Role::PrefillDecode,
            "encode" => Role::Encode,
            "encode-prefill" => Role::EncodePrefill,
            "encode-prefill-decode" => Role::EncodePrefillDecode,
            other => Role::Other(Arc::from(other)),
        }
    }
}

/// A model-server endpoint: one serving port of one pod.
///
/// ```
/// use pointsman::Endpoint;
/// let e = Endpoint::new("vllm-0-rank-0", "10.0.0.7", 8000).with_label("app", "vllm");
/// assert_eq!(e.host_port(), "10.0.0.7:8000");
/// let v6 = Endpoint::new("v6", "fd00::1", 8000);
/// assert_eq!(v6.host_port(), "[fd00::1]:8000");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    name: Arc<str>,
    address: Arc<str>,
    port: u16,
    host_port: Arc<str>,
    labels: BTreeMap<String, String>,
    role: Role,
}

impl Endpoint {
    /// An endpoint named `name` at `address:port` with no labels.
    pub fn new(name: impl Into<Arc<str>>, address: impl Into<Arc<str>>, port: u16) -> Self {
        let address: Arc<str> = address.into();
        let host_port = join_host_port(&address, port);
        Endpoint {
            name: name.into(),
            address,
            port,
            host_port: host_port.into(),
            labels: BTreeMap::new(),
            role: Role::Unspecified,
        }
    }

    /// Adds a label; the [`ROLE_LABEL`] label also sets the role.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let (key, value) = (key.into(), value.into());
        if key == ROLE_LABEL {
            self.role = Role::from_label(&value);
        }
        self.labels.insert(key, value);
        self
    }

    /// Replaces all labels (and the role derived from them).
    pub fn with_labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.role = labels
            .get(ROLE_LABEL)
            .map(|v| Role::from_label(v))
            .unwrap_or_default();
        self.labels = labels;
        self
    }

    /// The endpoint's unique name in its pool (for Kubernetes, `<pod>-rank-<i>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shared name.
    pub fn name_arc(&self) -> &Arc<str> {
        &self.name
    }

    /// The IP address or host name.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The serving port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `address:port`, with IPv6 addresses in brackets, as the gateway expects it in
    /// `x-gateway-destination-endpoint`. Computed once at construction.
    pub fn host_port(&self) -> &str {
        &self.host_port
    }

    /// The labels.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// The role, from the [`ROLE_LABEL`] label.
    pub fn role(&self) -> &Role {
        &self.role
    }
}

fn join_host_port(address: &str, port: u16) -> String {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => format!("[{address}]:{port}"),
        _ => format!("{address}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_from_label() {
        let e = Endpoint::new("a", "1.2.3.4", 1).with_label(ROLE_LABEL, "prefill");
        assert_eq!(e.role(), &Role::Prefill);
        assert_eq!(Role::from_label("both"), Role::PrefillDecode);
        assert!(matches!(Role::from_label("x"), Role::Other(_)));
        let mut labels = BTreeMap::new();
        labels.insert(ROLE_LABEL.to_string(), "decode".to_string());
        assert_eq!(e.with_labels(labels).role(), &Role::Decode);
    }
}

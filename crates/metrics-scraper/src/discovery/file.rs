//! Endpoints listed in a YAML or JSON file, reloaded when the file changes.
//!
//! # Format
//!
//! ```yaml
//! endpoints:
//!   - name: vllm-0-rank-0          # unique, not empty
//!     address: 10.0.0.7            # IP address or host name
//!     port: 8000                   # 1..=65535; /metrics is polled on this port
//!     labels:                      # optional
//!       inference.networking.k8s.io/engine-type: vllm
//!   - name: sglang-0
//!     address: 10.0.0.8
//!     port: 30000
//! ```
//!
//! JSON with the same shape (`{"endpoints": [{"name": …}]}`) is read too, JSON being YAML.
//! Unknown fields are errors. An empty file or `endpoints: []` is an empty set.
//!
//! # Reloading
//!
//! The file is read every [`poll_interval`](FileDiscovery::poll_interval) (default 1 s) and
//! re-parsed when its bytes changed. Polling rather than inotify also follows a Kubernetes
//! ConfigMap volume, whose files are replaced by swapping a symlink. A file that cannot be
//! read or parsed is reported (once per distinct problem) and the last good set stays in
//! force; a file that is deleted keeps the last set too. Replace the file atomically (write a
//! sibling, then rename it over the original, as ConfigMap volumes do): a reader that catches
//! an in-place write half done may see a shorter but valid list, or an empty file, which is
//! an empty set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pointsman::Endpoint;
use serde::{Deserialize, Serialize};

use super::{Discovery, DiscoveryError, EndpointSink};

/// The root of an endpoint file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointFile {
    /// The endpoints.
    #[serde(default)]
    pub endpoints: Vec<EndpointFileEntry>,
}

/// One endpoint in an endpoint file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointFileEntry {
    /// Unique name.
    pub name: String,
    /// IP address or host name.
    pub address: String,
    /// Serving and metrics port.
    pub port: u16,
    /// Labels, e.g. the engine label.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl EndpointFile {
    /// Parses and validates a file's text.
    ///
    /// ```
    /// use pointsman_scraper::discovery::EndpointFile;
    ///
    /// let endpoints = EndpointFile::parse("endpoints:\n- {name: a, address: 10.0.0.1, port: 8000}\n")?;
    /// assert_eq!(endpoints[0].host_port(), "10.0.0.1:8000");
    /// let err = EndpointFile::parse("endpoints:\n- {name: a, address: '', port: 0}\n").unwrap_err();
    /// assert_eq!(err, ["endpoints[0].address: expected an IP address or host name, got \"\"",
    ///                  "endpoints[0].port: expected 1..=65535, got 0"]);
    /// # Ok::<(), Vec<String>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Every problem found, each prefixed by its location.
    pub fn parse(text: &str) -> Result<Vec<Endpoint>, Vec<String>> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let file: EndpointFile = serde_yaml_ng::from_str(text).map_err(|e| vec![e.to_string()])?;
        file.into_endpoints()
    }

    /// Validates the entries and converts them.
    ///
    /// # Errors
    ///
    /// Every problem found: empty or repeated names, empty addresses, port 0.
    pub fn into_endpoints(self) -> Result<Vec<Endpoint>, Vec<String>> {
        let mut problems = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for (i, e) in self.endpoints.iter().enumerate() {
            if e.name.is_empty() {
                problems.push(format!("endpoints[{i}].name: expected a name, got \"\""));
            } else if let Some(first) = seen.insert(e.name.as_str(), i) {
                problems.push(format!(
                    "endpoints[{i}].name: {:?} is already used by endpoints[{first}]",
                    e.name
                ));
            }
            if e.address.trim().is_empty() {
                problems.push(format!(
                    "endpoints[{i}].address: expected an IP address or host name, got {:?}",
                    e.address
                ));
            }
            if e.port == 0 {
                problems.push(format!("endpoints[{i}].port: expected 1..=65535, got 0"));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(self
            .endpoints
            .into_iter()
            .map(|e| Endpoint::new(e.name, e.address, e.port).with_labels(e.labels))
            .collect())
    }
}

/// Endpoints read from a file (see [`discovery`](crate::discovery) and [`EndpointFile`] for the
/// format: a list of `name`, `address`, `port`, optional `labels`), polled for
/// changes.
#[derive(Debug, Clone)]
pub struct FileDiscovery {
    path: PathBuf,
    poll_interval: Duration,
}

impl FileDiscovery {
    /// The default interval between reads of the file.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

    /// A source reading `path` every [`DEFAULT_POLL_INTERVAL`](Self::DEFAULT_POLL_INTERVAL).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            poll_interval: Self::DEFAULT_POLL_INTERVAL,
        }
    }

    /// Reads the file every `interval` instead (at least 1 ms).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The interval between reads.
    pub fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// Reads and parses the file once.
    ///
    /// # Errors
    ///
    /// [`DiscoveryError::Read`] or [`DiscoveryError::Format`].
    pub fn load(&self) -> Result<Vec<Endpoint>, DiscoveryError> {
        let bytes = std::fs::read(&self.path).map_err(|source| DiscoveryError::Read {
            path: self.path.clone(),
            source,
        })?;
        self.parse(&bytes)
    }

    fn parse(&self, bytes: &[u8]) -> Result<Vec<Endpoint>, DiscoveryError> {
        let format = |problems| DiscoveryError::Format {
            path: self.path.clone(),
            problems,
        };
        let text = std::str::from_utf8(bytes)
            .map_err(|e| format(vec![format!("not UTF-8 at byte {}", e.valid_up_to())]))?;
        EndpointFile::parse(text).map_err(format)
    }
}

impl Discovery for FileDiscovery {
    async fn run(&mut self, sink: &EndpointSink) -> Result<(), DiscoveryError> {
        let mut ticker = tokio::time::interval(self.poll_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_bytes: Option<Vec<u8>> = None;
        let mut last_problem: Option<String> = None;
        loop {
            ticker.tick().await;
            let outcome = match tokio::fs::read(&self.path).await {
                Ok(bytes) if last_bytes.as_ref() == Some(&bytes) => continue,
                Ok(bytes) => {
                    let parsed = self.parse(&bytes);
                    last_bytes = Some(bytes);
                    parsed
                }
                Err(source) => {
                    // Read again once the file is back, even if unchanged.
                    last_bytes = None;
                    Err(DiscoveryError::Read {
                        path: self.path.clone(),
                        source,
                    })
                }
            };
            match outcome {
                Ok(endpoints) => {
                    last_problem = None;
                    sink.publish(endpoints);
                }
                Err(error) => {
                    let text = error.to_string();
                    if last_problem.as_deref() != Some(&text) {
                        sink.report_error(&error);
                        last_problem = Some(text);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_yaml_and_json_with_labels() {
        let yaml = "endpoints:\n  - name: a\n    address: 10.0.0.1\n    port: 8000\n    labels:\n      \
                    inference.networking.k8s.io/engine-type: sglang\n";
        let json = r#"{"endpoints":[{"name":"a","address":"10.0.0.1","port":8000,
                       "labels":{"inference.networking.k8s.io/engine-type":"sglang"}}]}"#;
        for text in [yaml, json] {
            let e = EndpointFile::parse(text).unwrap();
            assert_eq!(e.len(), 1);
            assert_eq!(e[0].name(), "a");
            assert_eq!(
                e[0].label("inference.networking.k8s.io/engine-type"),
                Some("sglang")
            );
        }
        assert!(EndpointFile::parse("").unwrap().is_empty());
        assert!(EndpointFile::parse("endpoints: []").unwrap().is_empty());
    }

    #[test]
    fn every_problem_is_reported_with_its_location() {
        let text = "endpoints:\n- {name: a, address: x, port: 1}\n- {name: a, address: y, port: 2}\n\
                    - {name: '', address: z, port: 3}\n";
        assert_eq!(
            EndpointFile::parse(text).unwrap_err(),
            [
                "endpoints[1].name: \"a\" is already used by endpoints[0]",
                "endpoints[2].name: expected a name, got \"\""
            ]
        );
        let unknown = EndpointFile::parse("endpoints:\n- {name: a, address: x, prot: 1}\n");
        assert!(unknown.unwrap_err()[0].contains("unknown field `prot`"));
        let bad_port = EndpointFile::parse("endpoints:\n- {name: a, address: x, port: 70000}\n");
        assert!(bad_port.unwrap_err()[0].contains("endpoints[0].port"));
    }
}

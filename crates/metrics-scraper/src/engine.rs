//! Engine metric mappings: which series of a model server's `/metrics` feed which signal.
//!
//! This mirrors the reference's `core-metrics-extractor` plugin
//! (`framework/plugins/datalayer/extractor/metrics/{factories,mapping,spec,loraspec,extractor}.go`
//! in the last full GIE EPP tree). Each engine has an [`EngineConfig`] of spec strings (see
//! [`spec`](crate::spec)); an empty string disables that signal. The built-in engines:
//!
//! | signal (config field) | `vllm` | `sglang` | `trtllm-serve` | `triton-tensorrt-llm` |
//! | --- | --- | --- | --- | --- |
//! | waiting queue (`queuedRequestsSpec`) | `vllm:num_requests_waiting` | `sglang:num_queue_reqs` | `trtllm_num_requests_waiting` | `nv_trt_llm_request_metrics{request_type=waiting}` |
//! | running (`runningRequestsSpec`) | `vllm:num_requests_running` | `sglang:num_running_reqs` | `trtllm_num_requests_running` | `nv_trt_llm_request_metrics{request_type=scheduled}` |
//! | KV-cache usage 0..1 (`kvUsageSpec`) | `vllm:kv_cache_usage_perc`, else `vllm:gpu_cache_usage_perc` | `sglang:token_usage` | `trtllm_kv_cache_utilization` | `nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=fraction}` |
//! | LoRA (`loraSpec`) | `vllm:lora_requests_info` | — | — | — |
//! | cache config labels (`cacheInfoSpec`) | `vllm:cache_config_info`: `block_size`, `num_gpu_blocks` | `sglang:cache_config_info`: `page_size`, `num_pages` | — | — |
//! | block size gauge (`cacheBlockSizeSpec`) | — | — | `trtllm_kv_cache_tokens_per_block` | `nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=tokens_per}` |
//! | block count gauge (`cacheNumBlocksSpec`) | — | — | `trtllm_kv_cache_max_blocks` | `nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=max}` |
//!
//! # Rules
//!
//! - **Selecting a series.** A series is a candidate when its sample name equals the spec's
//!   name and it carries every label matcher of the spec. Among candidates the one with the
//!   newest exposition timestamp wins (no timestamp counts as 0); on a tie the first in the
//!   text wins. Gauge, counter and untyped samples are all read by value.
//! - **LoRA.** `vllm:lora_requests_info`'s value is a "last updated" timestamp and every label
//!   combination is its own series, so the candidate with the **highest value** wins. Its labels
//!   `running_lora_adapters` and `waiting_lora_adapters` are comma-separated lists (items
//!   trimmed, empty items and repeats dropped); `max_lora` is an integer.
//! - **Cache config.** From the labels of the `cacheInfoSpec` series (label names from
//!   `cacheBlockSizeLabelName`/`cacheNumBlocksLabelName`, default `block_size` and
//!   `num_gpu_blocks`), then from the `cacheBlockSizeSpec`/`cacheNumBlocksSpec` gauges, which
//!   win when both are configured.
//! - **Counts.** Queue, running, block size and block count values are truncated toward zero
//!   like the reference's `int(value)`; negative, NaN or infinite values are reported in
//!   [`Extraction::invalid`] instead.
//! - **Missing metrics.** Every enabled signal whose series is absent is listed in
//!   [`Extraction::missing`]; the others still extract.
//! - **One pass.** [`EngineMapping::extract`] walks the text once, keeping only the best
//!   candidate per signal (borrowed from the text); it builds no map of series.
//!
//! # Choosing the engine
//!
//! [`EngineRegistry`] holds one mapping per engine name, built from [`ExtractorParams`]:
//! `engineConfigs` entries replace the built-in entry of the same name wholesale; `default` is
//! reserved; an endpoint without the engine label (default key
//! `inference.networking.k8s.io/engine-type`) gets `defaultEngine` (default `vllm`).
//!
//! # Differs from the reference
//!
//! - `vllm:kv_cache_usage_perc` falls back to `vllm:gpu_cache_usage_perc` (its name before the
//!   vLLM V1 engine, GIE's default up to v1.0) with the same matchers, when only the old name is
//!   exposed. The reference reports the metric missing.
//! - Specs name sample names, so a histogram is read through `foo_sum` or `foo_count`, not
//!   `foo`; untyped series are read by value (the reference reads 0 for them).
//! - A series with a negative timestamp can still be selected (the reference never selects one).
//! - Spec syntax it would silently ignore is an error (see [`spec`](crate::spec)).
//! - A missing LoRA family is reported in `missing` as GIE does; llm-d-router later stopped
//!   reporting it (#926). Callers that want that behaviour ignore [`Signal::Lora`].
//!
//! # Example
//!
//! ```
//! use pointsman_scraper::engine::{EngineRegistry, Signal};
//!
//! let registry = EngineRegistry::builtin();
//! let vllm = registry.for_endpoint(None).expect("vllm is the default engine");
//! let text = "\
//! vllm:num_requests_waiting{model_name=\"m\"} 3.0
//! vllm:num_requests_running{model_name=\"m\"} 2.0
//! vllm:kv_cache_usage_perc{model_name=\"m\"} 0.25
//! vllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"4096\"} 1.0
//! ";
//! let out = vllm.extract(text)?;
//! assert_eq!(out.sample.waiting_queue, Some(3));
//! assert_eq!(out.sample.running, Some(2));
//! assert_eq!(out.sample.kv_cache_usage, Some(0.25));
//! assert_eq!(out.sample.cache_block_size, Some(16));
//! assert_eq!(out.sample.cache_num_blocks, Some(4096));
//! assert_eq!(out.missing.iter().collect::<Vec<_>>(), [Signal::Lora]);
//! # Ok::<(), pointsman_scraper::exposition::ParseError>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::exposition::{ParseError, Sample, samples, samples_named};
use crate::spec::{MetricSpec, SpecError};

/// The built-in engine name for vLLM.
pub const VLLM: &str = "vllm";
/// The built-in engine name for SGLang.
pub const SGLANG: &str = "sglang";
/// The built-in engine name for TensorRT-LLM's own server.
pub const TRTLLM_SERVE: &str = "trtllm-serve";
/// The built-in engine name for Triton with the TensorRT-LLM backend.
pub const TRITON_TENSORRT_LLM: &str = "triton-tensorrt-llm";
/// The reserved engine name that always resolves to the default engine.
pub const DEFAULT_ENGINE_ALIAS: &str = "default";
/// The pod label naming an endpoint's engine, unless configured otherwise.
pub const DEFAULT_ENGINE_LABEL_KEY: &str = "inference.networking.k8s.io/engine-type";
/// The engine used for endpoints without the label, unless configured otherwise.
pub const DEFAULT_ENGINE: &str = VLLM;
/// The cache-config label holding the block size, unless configured otherwise.
pub const DEFAULT_BLOCK_SIZE_LABEL: &str = "block_size";
/// The cache-config label holding the number of blocks, unless configured otherwise.
pub const DEFAULT_NUM_BLOCKS_LABEL: &str = "num_gpu_blocks";

const VLLM_KV_USAGE: &str = "vllm:kv_cache_usage_perc";
const VLLM_KV_USAGE_LEGACY: &str = "vllm:gpu_cache_usage_perc";
const LORA_RUNNING_LABEL: &str = "running_lora_adapters";
const LORA_WAITING_LABEL: &str = "waiting_lora_adapters";
const LORA_MAX_LABEL: &str = "max_lora";

/// The metric specs of one engine, as written in `engineConfigs` of the
/// `core-metrics-extractor` parameters. Every field but `name` defaults to `""` (disabled).
///
/// ```
/// use pointsman_scraper::engine::EngineConfig;
///
/// let config: EngineConfig = serde_json::from_str(r#"{
///     "name": "triton",
///     "queuedRequestsSpec": "nv_inference_pending_request_count",
///     "runningRequestsSpec": "nv_inference_exec_count"
/// }"#)?;
/// assert_eq!(config.kv_usage_spec, "");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EngineConfig {
    /// The engine name matched against the endpoint's engine label; not empty, not `default`.
    pub name: String,
    /// Spec of the waiting-queue gauge.
    pub queued_requests_spec: String,
    /// Spec of the running-requests gauge.
    pub running_requests_spec: String,
    /// Spec of the KV-cache usage gauge (0..1).
    pub kv_usage_spec: String,
    /// Spec of the LoRA info gauge (`vllm:lora_requests_info`).
    pub lora_spec: String,
    /// Spec of an info-style gauge whose labels carry the block size and number of blocks.
    pub cache_info_spec: String,
    /// Label of `cacheInfoSpec` holding the block size; `""` means `block_size`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cache_block_size_label_name: String,
    /// Label of `cacheInfoSpec` holding the number of blocks; `""` means `num_gpu_blocks`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cache_num_blocks_label_name: String,
    /// Spec of a gauge whose value is the block size in tokens.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cache_block_size_spec: String,
    /// Spec of a gauge whose value is the number of KV-cache blocks.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cache_num_blocks_spec: String,
}

impl EngineConfig {
    /// The built-in `vllm` entry.
    pub fn vllm() -> Self {
        Self {
            name: VLLM.into(),
            queued_requests_spec: "vllm:num_requests_waiting".into(),
            running_requests_spec: "vllm:num_requests_running".into(),
            kv_usage_spec: VLLM_KV_USAGE.into(),
            lora_spec: "vllm:lora_requests_info".into(),
            cache_info_spec: "vllm:cache_config_info".into(),
            ..Self::default()
        }
    }

    /// The built-in `sglang` entry.
    pub fn sglang() -> Self {
        Self {
            name: SGLANG.into(),
            queued_requests_spec: "sglang:num_queue_reqs".into(),
            running_requests_spec: "sglang:num_running_reqs".into(),
            kv_usage_spec: "sglang:token_usage".into(),
            cache_info_spec: "sglang:cache_config_info".into(),
            cache_block_size_label_name: "page_size".into(),
            cache_num_blocks_label_name: "num_pages".into(),
            ..Self::default()
        }
    }

    /// The built-in `trtllm-serve` entry.
    pub fn trtllm_serve() -> Self {
        Self {
            name: TRTLLM_SERVE.into(),
            queued_requests_spec: "trtllm_num_requests_waiting".into(),
            running_requests_spec: "trtllm_num_requests_running".into(),
            kv_usage_spec: "trtllm_kv_cache_utilization".into(),
            cache_block_size_spec: "trtllm_kv_cache_tokens_per_block".into(),
            cache_num_blocks_spec: "trtllm_kv_cache_max_blocks".into(),
            ..Self::default()
        }
    }

    /// The built-in `triton-tensorrt-llm` entry.
    pub fn triton_tensorrt_llm() -> Self {
        Self {
            name: TRITON_TENSORRT_LLM.into(),
            queued_requests_spec: "nv_trt_llm_request_metrics{request_type=waiting}".into(),
            running_requests_spec: "nv_trt_llm_request_metrics{request_type=scheduled}".into(),
            kv_usage_spec: "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=fraction}".into(),
            cache_block_size_spec:
                "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=tokens_per}".into(),
            cache_num_blocks_spec: "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=max}"
                .into(),
            ..Self::default()
        }
    }

    /// All built-in entries, in the reference's order.
    pub fn builtins() -> [Self; 4] {
        [
            Self::vllm(),
            Self::sglang(),
            Self::trtllm_serve(),
            Self::triton_tensorrt_llm(),
        ]
    }

    fn spec_field(&self, signal: Signal) -> &str {
        match signal {
            Signal::QueuedRequests => &self.queued_requests_spec,
            Signal::RunningRequests => &self.running_requests_spec,
            Signal::KvCacheUsage => &self.kv_usage_spec,
            Signal::Lora => &self.lora_spec,
            Signal::CacheInfo => &self.cache_info_spec,
            Signal::CacheBlockSize => &self.cache_block_size_spec,
            Signal::CacheNumBlocks => &self.cache_num_blocks_spec,
        }
    }
}

/// The parameters of the `core-metrics-extractor` plugin.
///
/// ```
/// use pointsman_scraper::engine::{EngineRegistry, ExtractorParams};
///
/// let params: ExtractorParams = serde_json::from_str(r#"{
///     "defaultEngine": "sglang",
///     "engineConfigs": [{"name": "vllm", "queuedRequestsSpec": "vllm:num_requests_waiting"}]
/// }"#)?;
/// let registry = EngineRegistry::new(&params)?;
/// assert_eq!(registry.for_endpoint(None).map(|m| m.name()), Some("sglang"));
/// // The user's vllm entry replaced the built-in one wholesale.
/// let vllm = registry.get("vllm").expect("configured");
/// assert!(vllm.spec(pointsman_scraper::engine::Signal::KvCacheUsage).is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ExtractorParams {
    /// The endpoint label naming the engine; `""` means [`DEFAULT_ENGINE_LABEL_KEY`].
    pub engine_label_key: String,
    /// The engine for endpoints without the label; `""` means [`DEFAULT_ENGINE`].
    pub default_engine: String,
    /// Engine entries; each replaces the built-in entry of the same name, the other built-ins
    /// are kept.
    pub engine_configs: Vec<EngineConfig>,
}

impl Default for ExtractorParams {
    fn default() -> Self {
        Self {
            engine_label_key: DEFAULT_ENGINE_LABEL_KEY.into(),
            default_engine: DEFAULT_ENGINE.into(),
            engine_configs: Vec::new(),
        }
    }
}

/// A signal an engine mapping can extract, named after its [`EngineConfig`] field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// `queuedRequestsSpec` → [`EngineSample::waiting_queue`].
    QueuedRequests,
    /// `runningRequestsSpec` → [`EngineSample::running`].
    RunningRequests,
    /// `kvUsageSpec` → [`EngineSample::kv_cache_usage`].
    KvCacheUsage,
    /// `loraSpec` → [`EngineSample::lora`].
    Lora,
    /// `cacheInfoSpec` → [`EngineSample::cache_block_size`] and
    /// [`EngineSample::cache_num_blocks`] from labels.
    CacheInfo,
    /// `cacheBlockSizeSpec` → [`EngineSample::cache_block_size`] from a gauge.
    CacheBlockSize,
    /// `cacheNumBlocksSpec` → [`EngineSample::cache_num_blocks`] from a gauge.
    CacheNumBlocks,
}

impl Signal {
    /// Every signal, in extraction order.
    pub const ALL: [Self; 7] = [
        Self::QueuedRequests,
        Self::RunningRequests,
        Self::KvCacheUsage,
        Self::Lora,
        Self::CacheInfo,
        Self::CacheBlockSize,
        Self::CacheNumBlocks,
    ];

    /// The [`EngineConfig`] JSON field holding this signal's spec.
    pub const fn config_field(self) -> &'static str {
        match self {
            Self::QueuedRequests => "queuedRequestsSpec",
            Self::RunningRequests => "runningRequestsSpec",
            Self::KvCacheUsage => "kvUsageSpec",
            Self::Lora => "loraSpec",
            Self::CacheInfo => "cacheInfoSpec",
            Self::CacheBlockSize => "cacheBlockSizeSpec",
            Self::CacheNumBlocks => "cacheNumBlocksSpec",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.config_field())
    }
}

/// A set of [`Signal`]s, stored as bits; iteration is in [`Signal::ALL`] order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SignalSet(u8);

impl SignalSet {
    /// The empty set.
    pub const EMPTY: Self = Self(0);

    /// Whether `signal` is in the set.
    pub const fn contains(self, signal: Signal) -> bool {
        self.0 & (1 << signal as u8) != 0
    }

    /// Adds `signal`.
    pub fn insert(&mut self, signal: Signal) {
        self.0 |= 1 << signal as u8;
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The number of signals in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The signals in the set.
    pub fn iter(self) -> impl Iterator<Item = Signal> {
        Signal::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl fmt::Debug for SignalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<Signal> for SignalSet {
    fn from_iter<I: IntoIterator<Item = Signal>>(iter: I) -> Self {
        let mut set = Self::EMPTY;
        for s in iter {
            set.insert(s);
        }
        set
    }
}

/// The engine metrics read from one scrape. `None` means not extracted (disabled, missing or
/// invalid; [`Extraction`] says which).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EngineSample {
    /// Requests waiting in the engine's queue.
    pub waiting_queue: Option<u32>,
    /// Requests being processed.
    pub running: Option<u32>,
    /// KV-cache usage as reported, normally 0..1 (not clamped).
    pub kv_cache_usage: Option<f64>,
    /// LoRA adapters, from the LoRA info series.
    pub lora: Option<LoraInfo>,
    /// KV-cache block (page) size in tokens.
    pub cache_block_size: Option<u32>,
    /// Number of KV-cache blocks on the accelerator.
    pub cache_num_blocks: Option<u64>,
}

/// LoRA adapter state from `vllm:lora_requests_info`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoraInfo {
    /// Adapters with running requests (`running_lora_adapters`), in label order.
    pub running: Vec<String>,
    /// Adapters with waiting requests (`waiting_lora_adapters`), in label order.
    pub waiting: Vec<String>,
    /// How many adapters can be active at once (`max_lora`), if given.
    pub max_lora: Option<u32>,
}

/// The result of [`EngineMapping::extract`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Extraction {
    /// The values read.
    pub sample: EngineSample,
    /// Enabled signals whose series was found (even if its value was then invalid).
    pub found: SignalSet,
    /// Enabled signals with no matching series in the text.
    pub missing: SignalSet,
    /// Series that were found but whose value or labels could not be used.
    pub invalid: Vec<InvalidMetric>,
}

impl Extraction {
    /// Whether at least one signal's series was found. The reference refreshes an endpoint's
    /// metrics (and its update time) only then.
    pub fn found_any(&self) -> bool {
        !self.found.is_empty()
    }
}

/// A selected series whose value or labels could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidMetric {
    /// A count is negative, NaN or infinite.
    #[error("{signal}: expected a count (a finite number >= 0), found {value}")]
    NotACount {
        /// The signal.
        signal: Signal,
        /// The value found.
        value: f64,
    },
    /// A usage value is NaN or infinite.
    #[error("{signal}: expected a finite number, found {value}")]
    NotFinite {
        /// The signal.
        signal: Signal,
        /// The value found.
        value: f64,
    },
    /// The selected info series lacks a label.
    #[error("{signal}: the selected series has no label \"{label}\"")]
    MissingLabel {
        /// The signal.
        signal: Signal,
        /// The label looked for.
        label: String,
    },
    /// A label that must be an integer is not.
    #[error("{signal}: expected an integer in label {label}=\"{value}\"")]
    NotAnInteger {
        /// The signal.
        signal: Signal,
        /// The label name.
        label: String,
        /// The value found.
        value: String,
    },
}

/// Which lines of a `/metrics` body extraction checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Validation {
    /// Every line must parse, or the whole body is rejected (the reference's behaviour: one
    /// malformed line of any metric fails the poll and leaves the endpoint stale).
    Full,
    /// Only the lines of the metrics the engine reads are parsed and checked; the rest are
    /// skipped after reading their metric name. Several times faster on real bodies, and a
    /// malformed line of an unrelated metric no longer makes the endpoint stale.
    #[default]
    Watched,
}

/// One engine's compiled specs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineMapping {
    name: String,
    specs: [Option<MetricSpec>; 7],
    /// `vllm:gpu_cache_usage_perc`, read when `kvUsageSpec` names `vllm:kv_cache_usage_perc`
    /// and that series is absent.
    kv_usage_legacy: Option<MetricSpec>,
    block_size_label: String,
    num_blocks_label: String,
}

impl EngineMapping {
    /// Compiles an engine entry.
    ///
    /// # Errors
    ///
    /// Every problem at once, each with its field: an empty or reserved `name`, a spec that
    /// does not parse, a label-name field that is not a label name.
    pub fn new(config: &EngineConfig) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        if config.name.is_empty() {
            errors.push(ConfigError::new("name", ConfigErrorKind::EmptyName));
        } else if config.name == DEFAULT_ENGINE_ALIAS {
            errors.push(ConfigError::new("name", ConfigErrorKind::ReservedName));
        }
        let mut specs: [Option<MetricSpec>; 7] = Default::default();
        for signal in Signal::ALL {
            let text = config.spec_field(signal);
            if text.is_empty() {
                continue;
            }
            match MetricSpec::parse(text) {
                Ok(spec) => {
                    if let Some(slot) = specs.get_mut(signal.index()) {
                        *slot = Some(spec);
                    }
                }
                Err(e) => errors.push(ConfigError::new(
                    signal.config_field(),
                    ConfigErrorKind::Spec(e),
                )),
            }
        }
        let label = |field: &'static str, value: &str, default: &str, errors: &mut Vec<_>| {
            if value.is_empty() {
                return default.to_owned();
            }
            if !is_label_name(value) {
                errors.push(ConfigError::new(
                    field,
                    ConfigErrorKind::InvalidLabelName(value.to_owned()),
                ));
            }
            value.to_owned()
        };
        let block_size_label = label(
            "cacheBlockSizeLabelName",
            &config.cache_block_size_label_name,
            DEFAULT_BLOCK_SIZE_LABEL,
            &mut errors,
        );
        let num_blocks_label = label(
            "cacheNumBlocksLabelName",
            &config.cache_num_blocks_label_name,
            DEFAULT_NUM_BLOCKS_LABEL,
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let kv_usage_legacy = specs
            .get(Signal::KvCacheUsage.index())
            .and_then(Option::as_ref)
            .filter(|s| s.name() == VLLM_KV_USAGE)
            .map(|s| s.renamed(VLLM_KV_USAGE_LEGACY));
        Ok(Self {
            name: config.name.clone(),
            specs,
            kv_usage_legacy,
            block_size_label,
            num_blocks_label,
        })
    }

    /// The engine name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The spec of `signal`, or `None` if it is disabled.
    pub fn spec(&self, signal: Signal) -> Option<&MetricSpec> {
        self.specs.get(signal.index()).and_then(Option::as_ref)
    }

    /// The signals with a spec.
    pub fn enabled(&self) -> SignalSet {
        Signal::ALL
            .into_iter()
            .filter(|s| self.spec(*s).is_some())
            .collect()
    }

    /// Reads this engine's signals from a `/metrics` body in one pass, checking every line
    /// ([`Validation::Full`]).
    ///
    /// See the [module docs](self) for the selection rules. Allocates only for the result's
    /// LoRA adapter names and for reported problems.
    ///
    /// # Errors
    ///
    /// The first malformed line, as the reference fails the whole poll on a parse error.
    pub fn extract(&self, text: &str) -> Result<Extraction, ParseError> {
        self.extract_with(text, Validation::Full)
    }

    /// [`extract`](Self::extract) with a choice of which lines are checked. With
    /// [`Validation::Watched`] only the lines of the metrics this engine reads are parsed;
    /// whenever [`Validation::Full`] succeeds, both give the same result.
    ///
    /// # Errors
    ///
    /// The first malformed line among those checked.
    pub fn extract_with(
        &self,
        text: &str,
        validation: Validation,
    ) -> Result<Extraction, ParseError> {
        // Slots 0..7 follow `Signal::ALL`; slot 7 is the legacy KV-usage name.
        const LEGACY: usize = 7;
        let mut watched: [Option<(&MetricSpec, usize)>; 8] = [None; 8];
        for (i, spec) in self.specs.iter().enumerate() {
            if let (Some(slot), Some(spec)) = (watched.get_mut(i), spec) {
                *slot = Some((spec, i));
            }
        }
        if let (Some(slot), Some(spec)) = (watched.get_mut(LEGACY), &self.kv_usage_legacy) {
            *slot = Some((spec, LEGACY));
        }
        let lora_slot = Signal::Lora.index();
        let mut best: [Option<Sample<'_>>; 8] = [None; 8];

        let mut names: [&str; 8] = [""; 8];
        let mut watching = 0;
        for (spec, _) in watched.iter().flatten() {
            if !names[..watching].contains(&spec.name()) {
                if let Some(slot) = names.get_mut(watching) {
                    *slot = spec.name();
                    watching += 1;
                }
            }
        }
        let lines = match validation {
            Validation::Full => samples(text),
            Validation::Watched => samples_named(text, names.get(..watching).unwrap_or(&[])),
        };
        for sample in lines {
            let sample = sample?;
            for &(spec, slot) in watched.iter().flatten() {
                if spec.name() != sample.name || !spec.matches_labels(&sample) {
                    continue;
                }
                let Some(current) = best.get_mut(slot) else {
                    continue;
                };
                let better = match current {
                    None => true,
                    Some(held) if slot == lora_slot => newer_by_value(sample.value, held.value),
                    Some(held) => sample.timestamp_ms.unwrap_or(0) > held.timestamp_ms.unwrap_or(0),
                };
                if better {
                    *current = Some(sample);
                }
            }
        }

        let mut out = Extraction::default();
        for signal in Signal::ALL {
            if self.spec(signal).is_none() {
                continue;
            }
            let mut chosen = best.get(signal.index()).copied().flatten();
            if chosen.is_none() && signal == Signal::KvCacheUsage {
                chosen = best.get(LEGACY).copied().flatten();
            }
            match chosen {
                Some(sample) => {
                    out.found.insert(signal);
                    self.apply(signal, &sample, &mut out);
                }
                None => out.missing.insert(signal),
            }
        }
        Ok(out)
    }

    fn apply(&self, signal: Signal, sample: &Sample<'_>, out: &mut Extraction) {
        let value = sample.value;
        let s = &mut out.sample;
        match signal {
            Signal::QueuedRequests => s.waiting_queue = count(signal, value, &mut out.invalid),
            Signal::RunningRequests => s.running = count(signal, value, &mut out.invalid),
            Signal::KvCacheUsage => {
                if value.is_finite() {
                    s.kv_cache_usage = Some(value);
                } else {
                    out.invalid.push(InvalidMetric::NotFinite { signal, value });
                }
            }
            Signal::Lora => s.lora = Some(lora_info(sample, &mut out.invalid)),
            Signal::CacheInfo => {
                if let Some(v) = int_label(signal, sample, &self.block_size_label, &mut out.invalid)
                {
                    s.cache_block_size = Some(v);
                }
                if let Some(v) = int_label(signal, sample, &self.num_blocks_label, &mut out.invalid)
                {
                    s.cache_num_blocks = Some(v);
                }
            }
            Signal::CacheBlockSize => {
                if let Some(v) = count(signal, value, &mut out.invalid) {
                    s.cache_block_size = Some(v);
                }
            }
            Signal::CacheNumBlocks => {
                if let Some(v) = count(signal, value, &mut out.invalid) {
                    s.cache_num_blocks = Some(v);
                }
            }
        }
    }
}

/// Whether a LoRA series with `value` replaces the one held (NaN ranks lowest; ties keep the
/// first).
fn newer_by_value(value: f64, held: f64) -> bool {
    value > held || (held.is_nan() && !value.is_nan())
}

/// Truncates a gauge to a count like Go's `int(v)`, saturating at `T::MAX`.
fn count<T: TryFrom<u64> + Bounded>(
    signal: Signal,
    value: f64,
    invalid: &mut Vec<InvalidMetric>,
) -> Option<T> {
    if !value.is_finite() || value < 0.0 {
        invalid.push(InvalidMetric::NotACount { signal, value });
        return None;
    }
    // `as` saturates at u64::MAX; `try_from` saturates the rest.
    let v = value as u64;
    Some(T::try_from(v).unwrap_or(T::MAX))
}

/// Integer types a count can be stored in.
trait Bounded {
    const MAX: Self;
}

impl Bounded for u32 {
    const MAX: Self = u32::MAX;
}

impl Bounded for u64 {
    const MAX: Self = u64::MAX;
}

/// Reads an integer label like Go's `strconv.Atoi`; an empty value is skipped silently as in
/// the reference.
fn int_label<T: std::str::FromStr>(
    signal: Signal,
    sample: &Sample<'_>,
    label: &str,
    invalid: &mut Vec<InvalidMetric>,
) -> Option<T> {
    let Some(value) = sample.labels.get(label) else {
        invalid.push(InvalidMetric::MissingLabel {
            signal,
            label: label.to_owned(),
        });
        return None;
    };
    if value.is_empty() {
        return None;
    }
    match value.parse::<T>() {
        Ok(v) => Some(v),
        Err(_) => {
            invalid.push(InvalidMetric::NotAnInteger {
                signal,
                label: label.to_owned(),
                value: value.into_owned(),
            });
            None
        }
    }
}

fn lora_info(sample: &Sample<'_>, invalid: &mut Vec<InvalidMetric>) -> LoraInfo {
    let mut info = LoraInfo::default();
    for (name, value) in sample.labels.iter() {
        match name {
            LORA_RUNNING_LABEL => add_adapters(&mut info.running, &value),
            LORA_WAITING_LABEL => add_adapters(&mut info.waiting, &value),
            LORA_MAX_LABEL if !value.is_empty() => match value.parse::<u32>() {
                Ok(v) => info.max_lora = Some(v),
                Err(_) => invalid.push(InvalidMetric::NotAnInteger {
                    signal: Signal::Lora,
                    label: LORA_MAX_LABEL.to_owned(),
                    value: value.into_owned(),
                }),
            },
            _ => {}
        }
    }
    info
}

fn add_adapters(list: &mut Vec<String>, csv: &str) {
    for item in csv.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !list.iter().any(|a| a == item) {
            list.push(item.to_owned());
        }
    }
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Engine mappings by name, with a default for endpoints without an engine label.
#[derive(Debug, Clone)]
pub struct EngineRegistry {
    engine_label_key: String,
    engines: Vec<EngineMapping>,
    /// A copy of the default engine's entry of `engines`.
    default: EngineMapping,
}

impl EngineRegistry {
    /// Builds the registry: the configured entries, then each built-in entry whose name is not
    /// configured.
    ///
    /// # Errors
    ///
    /// Every problem at once, each with its path, e.g.
    /// `engineConfigs[0] (triton): kvUsageSpec: invalid metric spec …`: the problems of
    /// [`EngineMapping::new`], an engine configured twice, and a `defaultEngine` that names
    /// no engine.
    pub fn new(params: &ExtractorParams) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let mut engines = Vec::new();
        for (i, config) in params.engine_configs.iter().enumerate() {
            let path = format!("engineConfigs[{i}] ({})", config.name);
            if params
                .engine_configs
                .iter()
                .take(i)
                .any(|c| c.name == config.name)
            {
                errors.push(ConfigError::new(
                    path.clone(),
                    ConfigErrorKind::DuplicateName(config.name.clone()),
                ));
            }
            match EngineMapping::new(config) {
                Ok(mapping) => engines.push(mapping),
                Err(ConfigErrors(list)) => errors.extend(list.into_iter().map(|e| e.within(&path))),
            }
        }
        for builtin in EngineConfig::builtins() {
            if !params.engine_configs.iter().any(|c| c.name == builtin.name) {
                match EngineMapping::new(&builtin) {
                    Ok(mapping) => engines.push(mapping),
                    Err(ConfigErrors(list)) => errors.extend(list),
                }
            }
        }
        let default_name = if params.default_engine.is_empty() {
            DEFAULT_ENGINE
        } else {
            params.default_engine.as_str()
        };
        let default = engines.iter().find(|m| m.name == default_name).cloned();
        if default.is_none() && errors.is_empty() {
            let known = engines
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            errors.push(ConfigError::new(
                "defaultEngine",
                ConfigErrorKind::UnknownDefaultEngine {
                    name: default_name.to_owned(),
                    known,
                },
            ));
        }
        match default {
            Some(default) if errors.is_empty() => Ok(Self {
                engine_label_key: if params.engine_label_key.is_empty() {
                    DEFAULT_ENGINE_LABEL_KEY.to_owned()
                } else {
                    params.engine_label_key.clone()
                },
                engines,
                default,
            }),
            _ => Err(ConfigErrors(errors)),
        }
    }

    /// The registry of the built-in engines with `vllm` as default.
    pub fn builtin() -> Self {
        #[expect(
            clippy::expect_used,
            reason = "the built-in configs are constants, checked by the builtin_registry test"
        )]
        Self::new(&ExtractorParams::default()).expect("the built-in engine configs are valid")
    }

    /// The endpoint label whose value names the engine.
    pub fn engine_label_key(&self) -> &str {
        &self.engine_label_key
    }

    /// The mapping called `engine`; `default` names the default engine.
    pub fn get(&self, engine: &str) -> Option<&EngineMapping> {
        if engine == DEFAULT_ENGINE_ALIAS {
            return Some(self.default_mapping());
        }
        self.engines.iter().find(|m| m.name == engine)
    }

    /// The default engine's mapping.
    pub fn default_mapping(&self) -> &EngineMapping {
        &self.default
    }

    /// The mapping for an endpoint whose engine label has `engine_label` (`None` or `""` when
    /// absent); `None` when the label names an unknown engine, which the reference reports as
    /// an error.
    pub fn for_endpoint(&self, engine_label: Option<&str>) -> Option<&EngineMapping> {
        match engine_label {
            None | Some("") => Some(self.default_mapping()),
            Some(name) => self.get(name),
        }
    }

    /// All mappings, configured ones first.
    pub fn engines(&self) -> impl Iterator<Item = &EngineMapping> {
        self.engines.iter()
    }
}

/// One problem in extractor parameters, with the path of the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {kind}")]
#[non_exhaustive]
pub struct ConfigError {
    /// Where, e.g. `engineConfigs[1] (sglang): kvUsageSpec`.
    pub path: String,
    /// What is wrong.
    pub kind: ConfigErrorKind,
}

impl ConfigError {
    fn new(path: impl Into<String>, kind: ConfigErrorKind) -> Self {
        Self {
            path: path.into(),
            kind,
        }
    }

    fn within(mut self, prefix: &str) -> Self {
        self.path = format!("{prefix}: {}", self.path);
        self
    }
}

/// What is wrong with a field of the extractor parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// A spec that does not parse.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// An engine without a name.
    #[error("expected an engine name, found an empty string")]
    EmptyName,
    /// An engine called `default`.
    #[error("the engine name \"default\" is reserved")]
    ReservedName,
    /// Two entries with one name.
    #[error("engine \"{0}\" is configured more than once")]
    DuplicateName(String),
    /// A label-name field that is not a label name.
    #[error("expected a label name ([a-zA-Z_][a-zA-Z0-9_]*), found \"{0}\"")]
    InvalidLabelName(String),
    /// `defaultEngine` names no engine.
    #[error("expected one of the engines {known}, found \"{name}\"")]
    UnknownDefaultEngine {
        /// The name given.
        name: String,
        /// The engines configured or built in.
        known: String,
    },
}

/// All problems found in extractor parameters; displays them separated by `; `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn vllm() -> EngineMapping {
        EngineMapping::new(&EngineConfig::vllm()).unwrap()
    }

    #[test]
    fn watched_validation_skips_other_metrics_unchecked() {
        let good = "# TYPE vllm:num_requests_waiting gauge\n\
                    vllm:num_requests_waiting{model_name=\"m\"} 3\n\
                    vllm:num_requests_waiting_total 99\n\
                    vllm:num_requests_running 2 1700000000000\n\
                    vllm:kv_cache_usage_perc 0.5\n";
        let bad = format!("{good}some_other_metric{{le=broken 1\n");
        let mapping = vllm();
        let full = mapping.extract(good).unwrap();
        assert_eq!(full.sample.waiting_queue, Some(3));
        assert_eq!(full.sample.running, Some(2));
        // Same result whenever the full check passes ...
        assert_eq!(
            mapping.extract_with(good, Validation::Watched).unwrap(),
            full
        );
        // ... and a malformed line of another metric fails only the full check.
        assert_eq!(mapping.extract(&bad).unwrap_err().line, 6);
        assert_eq!(
            mapping.extract_with(&bad, Validation::Watched).unwrap(),
            full
        );
        // A malformed line of a watched metric fails both.
        let broken = "vllm:num_requests_running{x=1} 2\n";
        for validation in [Validation::Full, Validation::Watched] {
            let e = mapping.extract_with(broken, validation).unwrap_err();
            assert_eq!((e.line, e.column), (1, 29), "{validation:?}: {e}");
        }
    }

    #[test]
    fn builtin_registry() {
        let r = EngineRegistry::builtin();
        let names: Vec<_> = r.engines().map(EngineMapping::name).collect();
        assert_eq!(names, [VLLM, SGLANG, TRTLLM_SERVE, TRITON_TENSORRT_LLM]);
        assert_eq!(r.default_mapping().name(), VLLM);
        assert_eq!(r.get("default").unwrap().name(), VLLM);
        assert_eq!(r.for_endpoint(Some("")).unwrap().name(), VLLM);
        assert_eq!(r.for_endpoint(Some("sglang")).unwrap().name(), SGLANG);
        assert!(r.for_endpoint(Some("tgi")).is_none());
        assert_eq!(r.engine_label_key(), DEFAULT_ENGINE_LABEL_KEY);
    }

    #[test]
    fn config_json_names_match_the_reference() {
        let json = serde_json::to_value(EngineConfig::sglang()).unwrap();
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "cacheBlockSizeLabelName",
                "cacheInfoSpec",
                "cacheNumBlocksLabelName",
                "kvUsageSpec",
                "loraSpec",
                "name",
                "queuedRequestsSpec",
                "runningRequestsSpec",
            ]
        );
        let full: EngineConfig = serde_json::from_str(
            r#"{"name":"x","queuedRequestsSpec":"a","runningRequestsSpec":"b","kvUsageSpec":"c",
                "loraSpec":"d","cacheInfoSpec":"e","cacheBlockSizeLabelName":"f",
                "cacheNumBlocksLabelName":"g","cacheBlockSizeSpec":"h","cacheNumBlocksSpec":"i"}"#,
        )
        .unwrap();
        assert_eq!(full.cache_num_blocks_spec, "i");
        let unknown = serde_json::from_str::<EngineConfig>(r#"{"name":"x","kvSpec":"c"}"#);
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown field `kvSpec`")
        );
    }

    #[test]
    fn registry_errors_are_all_reported_with_paths() {
        let params: ExtractorParams = serde_json::from_str(
            r#"{"defaultEngine":"nope","engineConfigs":[
                {"name":"a","kvUsageSpec":"m{x!=y}","cacheBlockSizeLabelName":"1bad"},
                {"name":"default"},
                {"name":""},
                {"name":"a"}
            ]}"#,
        )
        .unwrap();
        let err = EngineRegistry::new(&params).unwrap_err();
        let lines: Vec<String> = err.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "engineConfigs[0] (a): kvUsageSpec: invalid metric spec \"m{x!=y}\": column 4: \
                 label \"x\": only '=' matchers are supported, found \"!=\"",
                "engineConfigs[0] (a): cacheBlockSizeLabelName: expected a label name \
                 ([a-zA-Z_][a-zA-Z0-9_]*), found \"1bad\"",
                "engineConfigs[1] (default): name: the engine name \"default\" is reserved",
                "engineConfigs[2] (): name: expected an engine name, found an empty string",
                "engineConfigs[3] (a): engine \"a\" is configured more than once",
            ]
        );
        let only_default: ExtractorParams =
            serde_json::from_str(r#"{"defaultEngine":"nope"}"#).unwrap();
        assert_eq!(
            EngineRegistry::new(&only_default).unwrap_err().to_string(),
            "defaultEngine: expected one of the engines vllm, sglang, trtllm-serve, \
             triton-tensorrt-llm, found \"nope\""
        );
    }

    #[test]
    fn newest_timestamp_wins_and_ties_keep_the_first() {
        let m = vllm();
        // ts: none(0), 20, 10, 20 → the one at 20 seen first.
        let text = "vllm:num_requests_waiting 1\nvllm:num_requests_waiting 2 20\n\
                    vllm:num_requests_waiting 3 10\nvllm:num_requests_waiting 4 20\n";
        assert_eq!(m.extract(text).unwrap().sample.waiting_queue, Some(2));
        let text = "vllm:num_requests_waiting{a=\"x\"} 5\nvllm:num_requests_waiting{a=\"y\"} 6\n";
        assert_eq!(m.extract(text).unwrap().sample.waiting_queue, Some(5));
    }

    #[test]
    fn label_matchers_select_series() {
        let m = EngineMapping::new(&EngineConfig::triton_tensorrt_llm()).unwrap();
        let text = "nv_trt_llm_request_metrics{request_type=\"max\"} 512\n\
                    nv_trt_llm_request_metrics{request_type=\"waiting\"} 7\n\
                    nv_trt_llm_request_metrics{request_type=\"scheduled\"} 3\n";
        let out = m.extract(text).unwrap();
        assert_eq!(out.sample.waiting_queue, Some(7));
        assert_eq!(out.sample.running, Some(3));
        assert_eq!(
            out.missing.iter().collect::<Vec<_>>(),
            [
                Signal::KvCacheUsage,
                Signal::CacheBlockSize,
                Signal::CacheNumBlocks
            ]
        );
    }

    #[test]
    fn lora_highest_value_wins() {
        let m = vllm();
        // Values 100, 300, 200 → the 300 series; NaN never wins.
        let text = r#"vllm:lora_requests_info{max_lora="4",running_lora_adapters="a",waiting_lora_adapters=""} 100
vllm:lora_requests_info{max_lora="4",running_lora_adapters=" b , c,,b ",waiting_lora_adapters="d"} 300
vllm:lora_requests_info{max_lora="4",running_lora_adapters="e",waiting_lora_adapters=""} 200
vllm:lora_requests_info{max_lora="4",running_lora_adapters="f",waiting_lora_adapters=""} NaN
"#;
        let lora = m.extract(text).unwrap().sample.lora.unwrap();
        assert_eq!(lora.running, ["b", "c"]);
        assert_eq!(lora.waiting, ["d"]);
        assert_eq!(lora.max_lora, Some(4));
        let nan_first = "vllm:lora_requests_info{running_lora_adapters=\"x\"} NaN\n\
                         vllm:lora_requests_info{running_lora_adapters=\"y\"} 1\n";
        let lora = m.extract(nan_first).unwrap().sample.lora.unwrap();
        assert_eq!(lora.running, ["y"]);
        assert_eq!(lora.max_lora, None);
    }

    #[test]
    fn legacy_vllm_kv_usage_name() {
        let m = vllm();
        let old = "vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.5\n";
        let out = m.extract(old).unwrap();
        assert_eq!(out.sample.kv_cache_usage, Some(0.5));
        assert!(!out.missing.contains(Signal::KvCacheUsage));
        let both = "vllm:gpu_cache_usage_perc 0.5\nvllm:kv_cache_usage_perc 0.25\n";
        assert_eq!(m.extract(both).unwrap().sample.kv_cache_usage, Some(0.25));
        // Not for other engines or renamed specs.
        let custom = EngineMapping::new(&EngineConfig {
            name: "x".into(),
            kv_usage_spec: "my_kv".into(),
            ..EngineConfig::default()
        })
        .unwrap();
        assert!(
            custom
                .extract(old)
                .unwrap()
                .missing
                .contains(Signal::KvCacheUsage)
        );
    }

    #[test]
    fn invalid_values_are_reported_and_others_extract() {
        let m = vllm();
        let text = "vllm:num_requests_waiting -1\nvllm:num_requests_running NaN\n\
                    vllm:kv_cache_usage_perc +Inf\n\
                    vllm:cache_config_info{block_size=\"None\"} 1\n\
                    vllm:lora_requests_info{max_lora=\"two\"} 1\n";
        let out = m.extract(text).unwrap();
        assert_eq!(
            out.sample,
            EngineSample {
                lora: Some(LoraInfo::default()),
                ..EngineSample::default()
            }
        );
        assert!(out.missing.is_empty());
        assert_eq!(out.found, m.enabled());
        let msgs: Vec<String> = out.invalid.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            [
                "queuedRequestsSpec: expected a count (a finite number >= 0), found -1",
                "runningRequestsSpec: expected a count (a finite number >= 0), found NaN",
                "kvUsageSpec: expected a finite number, found inf",
                "loraSpec: expected an integer in label max_lora=\"two\"",
                "cacheInfoSpec: expected an integer in label block_size=\"None\"",
                "cacheInfoSpec: the selected series has no label \"num_gpu_blocks\"",
            ]
        );
    }

    #[test]
    fn counts_truncate_and_saturate() {
        let m = vllm();
        let text = "vllm:num_requests_waiting 2.9\nvllm:num_requests_running 1e20\n";
        let out = m.extract(text).unwrap();
        assert_eq!(out.sample.waiting_queue, Some(2));
        assert_eq!(out.sample.running, Some(u32::MAX));
    }

    #[test]
    fn gauges_override_cache_info_labels() {
        let m = EngineMapping::new(&EngineConfig {
            name: "x".into(),
            cache_info_spec: "info".into(),
            cache_block_size_spec: "bs".into(),
            ..EngineConfig::default()
        })
        .unwrap();
        let text = "bs 32\ninfo{block_size=\"16\",num_gpu_blocks=\"100\"} 1\n";
        let out = m.extract(text).unwrap();
        assert_eq!(out.sample.cache_block_size, Some(32));
        assert_eq!(out.sample.cache_num_blocks, Some(100));
    }

    #[test]
    fn parse_errors_fail_the_extraction() {
        let err = vllm()
            .extract("vllm:num_requests_waiting 1\nbad{ 2\n")
            .unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn disabled_signals_are_neither_found_nor_missing() {
        let out = EngineMapping::new(&EngineConfig::sglang())
            .unwrap()
            .extract("")
            .unwrap();
        assert!(!out.found_any());
        assert_eq!(
            out.missing.iter().collect::<Vec<_>>(),
            [
                Signal::QueuedRequests,
                Signal::RunningRequests,
                Signal::KvCacheUsage,
                Signal::CacheInfo
            ]
        );
    }
}

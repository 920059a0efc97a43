//! Public types can cross threads, and errors stay small enough to return by value.

use pointsman_scraper::discovery::{
    DiscoveryError, EndpointFile, EndpointSink, FileDiscovery, StaticDiscovery,
};
use pointsman_scraper::engine::{
    ConfigError, ConfigErrors, EngineConfig, EngineMapping, EngineRegistry, EngineSample,
    Extraction, ExtractorParams, InvalidMetric, LoraInfo, Signal, SignalSet,
};
use pointsman_scraper::error::{ErrorKind, ScrapeError, ScrapeErrorKind};
use pointsman_scraper::exposition::{
    Entry, EscapedStr, Labels, MetricType, ParseError, Parser, Sample, Samples,
};
use pointsman_scraper::scraper::{Scraper, ScraperConfig, ScraperHandle};
use pointsman_scraper::spec::{MetricSpec, SpecError};
use pointsman_scraper::stats::{EndpointStats, ScraperStats, StatsHandle};

fn send_sync<T: Send + Sync>() {}

#[test]
fn public_types_are_send_and_sync() {
    send_sync::<Parser<'static>>();
    send_sync::<Samples<'static, 'static>>();
    send_sync::<Entry<'static>>();
    send_sync::<Sample<'static>>();
    send_sync::<Labels<'static>>();
    send_sync::<EscapedStr<'static>>();
    send_sync::<MetricType>();
    send_sync::<ParseError>();
    send_sync::<MetricSpec>();
    send_sync::<SpecError>();
    send_sync::<EngineConfig>();
    send_sync::<ExtractorParams>();
    send_sync::<EngineMapping>();
    send_sync::<EngineRegistry>();
    send_sync::<EngineSample>();
    send_sync::<LoraInfo>();
    send_sync::<Extraction>();
    send_sync::<InvalidMetric>();
    send_sync::<Signal>();
    send_sync::<SignalSet>();
    send_sync::<ConfigError>();
    send_sync::<ConfigErrors>();
    send_sync::<ScrapeError>();
    send_sync::<ScrapeErrorKind>();
    send_sync::<ErrorKind>();
    send_sync::<Scraper>();
    send_sync::<ScraperConfig>();
    send_sync::<ScraperHandle>();
    send_sync::<ScraperStats>();
    send_sync::<EndpointStats>();
    send_sync::<StatsHandle>();
    send_sync::<DiscoveryError>();
    send_sync::<EndpointSink>();
    send_sync::<EndpointFile>();
    send_sync::<FileDiscovery>();
    send_sync::<StaticDiscovery>();
    #[cfg(feature = "kubernetes")]
    send_sync::<pointsman_scraper::discovery::kubernetes::KubernetesDiscovery>();
}

#[test]
fn sizes_stay_small() {
    // A sample is two string slices, a flag, a value and a timestamp.
    assert!(
        size_of::<Sample<'static>>() <= 64,
        "{}",
        size_of::<Sample<'static>>()
    );
    // The iterator item is returned once per line: keep the error no larger than 10 words.
    assert!(size_of::<ParseError>() <= 80, "{}", size_of::<ParseError>());
    assert_eq!(size_of::<SignalSet>(), 1);
    // Scrape errors are returned once per failed poll.
    assert!(
        size_of::<ScrapeError>() <= 56,
        "{}",
        size_of::<ScrapeError>()
    );
}

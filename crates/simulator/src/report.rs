//! Results: per-policy statistics, the comparison table, JSON, and SVG charts.

use crate::server::ServerStats;
use crate::sim::SimConfig;
use crate::workload::RequestSpec;
use serde::Serialize;
use std::fmt::Write as _;

/// What happened to one request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RequestOutcome {
    /// The server it was routed to.
    pub server: Option<usize>,
    /// When its first token was produced.
    pub first_token: Option<f64>,
    /// When it finished.
    pub finished: Option<f64>,
    /// The HTTP status it was refused with.
    pub rejected: Option<u16>,
}

/// Percentiles of a distribution, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Percentiles {
    /// Of `values` (sorted in place); all zero when empty.
    pub fn of(values: &mut [f64]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[(((values.len() - 1) as f64) * q).round() as usize];
        Percentiles {
            mean: values.iter().sum::<f64>() / values.len() as f64,
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
        }
    }
}

/// One policy's results on one workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyResult {
    /// The policy.
    pub policy: String,
    /// Requests offered.
    pub requests: usize,
    /// Requests completed.
    pub completed: usize,
    /// Requests refused (shed, or unschedulable).
    pub rejected: usize,
    /// Time to first token.
    pub ttft: Percentiles,
    /// Time per output token after the first.
    pub tpot: Percentiles,
    /// End-to-end latency.
    pub e2e: Percentiles,
    /// Output tokens per second over the run.
    pub output_tokens_per_s: f64,
    /// Completed requests per second meeting both SLOs.
    pub goodput_rps: f64,
    /// Fraction of *offered* requests completed within both SLOs (shed requests count as
    /// misses, so shedding never looks like better service).
    pub slo_attainment: f64,
    /// Prompt tokens served from servers' prefix caches, as a fraction.
    pub prefix_hit_rate: f64,
    /// Requests per server.
    pub per_server: Vec<usize>,
    /// First arrival to last completion, seconds.
    pub makespan: f64,
}

impl PolicyResult {
    /// Computes the statistics of a run.
    pub fn compute(
        policy: &str,
        requests: &[RequestSpec],
        outcomes: &[RequestOutcome],
        stats: &[ServerStats],
        cfg: &SimConfig,
    ) -> Self {
        let (mut ttft, mut tpot, mut e2e) = (Vec::new(), Vec::new(), Vec::new());
        let (mut out_tokens, mut good, mut completed, mut rejected) =
            (0u64, 0usize, 0usize, 0usize);
        let mut per_server = vec![0usize; stats.len()];
        let mut last = 0f64;
        for (r, o) in requests.iter().zip(outcomes) {
            if o.rejected.is_some() {
                rejected += 1;
                continue;
            }
            if let Some(s) = o.server {
                per_server[s] += 1;
            }
            let (Some(first), Some(done)) = (o.first_token, o.finished) else {
                continue;
            };
            completed += 1;
            last = last.max(done);
            let t = first - r.arrival;
            ttft.push(t);
            e2e.push(done - r.arrival);
            let per_token = if r.output_tokens > 1 {
                (done - first) / f64::from(r.output_tokens - 1)
            } else {
                0.0
            };
            if r.output_tokens > 1 {
                tpot.push(per_token);
            }
            out_tokens += u64::from(r.output_tokens);
            if t <= cfg.slo_ttft && per_token <= cfg.slo_tpot {
                good += 1;
            }
        }
        let start = requests.first().map_or(0.0, |r| r.arrival);
        let makespan = (last - start).max(1e-9);
        let prompt: u64 = stats.iter().map(|s| s.prompt_tokens).sum();
        let cached: u64 = stats.iter().map(|s| s.cached_tokens).sum();
        PolicyResult {
            policy: policy.to_string(),
            requests: requests.len(),
            completed,
            rejected,
            ttft: Percentiles::of(&mut ttft),
            tpot: Percentiles::of(&mut tpot),
            e2e: Percentiles::of(&mut e2e),
            output_tokens_per_s: out_tokens as f64 / makespan,
            goodput_rps: good as f64 / makespan,
            slo_attainment: if requests.is_empty() {
                0.0
            } else {
                good as f64 / requests.len() as f64
            },
            prefix_hit_rate: if prompt == 0 {
                0.0
            } else {
                cached as f64 / prompt as f64
            },
            per_server,
            makespan,
        }
    }
}

/// Formats results as an aligned text table.
pub fn table(results: &[PolicyResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>7} {:>6} {:>8}",
        "policy",
        "TTFT p50",
        "TTFT p90",
        "TTFT p99",
        "TPOT p50",
        "E2E p50",
        "E2E p90",
        "out tok/s",
        "goodput",
        "SLO %",
        "hit %",
        "rejected"
    );
    for r in results {
        let _ = writeln!(
            s,
            "{:<18} {:>8.3}s {:>8.3}s {:>8.3}s {:>7.1}ms {:>8.2}s {:>8.2}s {:>10.0} {:>7.2}/s {:>6.1}% {:>5.1}% {:>8}",
            r.policy,
            r.ttft.p50,
            r.ttft.p90,
            r.ttft.p99,
            r.tpot.p50 * 1e3,
            r.e2e.p50,
            r.e2e.p90,
            r.output_tokens_per_s,
            r.goodput_rps,
            r.slo_attainment * 100.0,
            r.prefix_hit_rate * 100.0,
            r.rejected
        );
    }
    s
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const COLORS: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f",
];

/// Horizontal grid lines with labels at 0.01, 0.1, 1, … up to `10^hi`, across `[x0, x0 + width]`.
fn log_grid(s: &mut String, x0: f64, width: f64, hi: f64, y_of: impl Fn(f64) -> f64) {
    let mut tick = 0.01f64;
    while tick.log10() <= hi {
        let y = y_of(tick);
        let _ = writeln!(
            s,
            "<line x1=\"{x0}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{tick}</text>",
            x0 + width,
            x0 - 4.0,
            y + 4.0
        );
        tick *= 10.0;
    }
}

/// An SVG chart: TTFT p50/p90/p99 per policy (log scale) and output throughput per policy.
pub fn svg_bars(title: &str, results: &[PolicyResult]) -> String {
    let (w, h) = (960.0, 420.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"20\" y=\"24\" font-size=\"16\">{}</text>\n",
        escape(title)
    );
    let n = results.len().max(1) as f64;
    // Left: TTFT percentiles, log10 scale from 10 ms to the largest p99.
    let (x0, y0, pw, ph) = (60.0, 50.0, 520.0, 300.0);
    let max_ttft = results.iter().map(|r| r.ttft.p99).fold(0.1f64, f64::max);
    let (lo, hi) = (0.01f64.log10(), max_ttft.max(0.02).log10() + 0.1);
    let y_of = |v: f64| y0 + ph - ph * ((v.max(0.01).log10() - lo) / (hi - lo)).clamp(0.0, 1.0);
    let _ = writeln!(
        s,
        "<text x=\"{x0}\" y=\"{}\">TTFT (s, log scale): p50 / p90 / p99</text>",
        y0 - 8.0
    );
    log_grid(&mut s, x0, pw, hi, y_of);
    let group = pw / n;
    for (i, r) in results.iter().enumerate() {
        for (k, v) in [r.ttft.p50, r.ttft.p90, r.ttft.p99].into_iter().enumerate() {
            let bw = group * 0.8 / 3.0;
            let x = x0 + group * i as f64 + group * 0.1 + bw * k as f64;
            let y = y_of(v);
            let opacity = [1.0, 0.7, 0.4][k];
            let _ = writeln!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"{}\" fill-opacity=\"{opacity}\"><title>{} {}: {v:.3}s</title></rect>",
                (y0 + ph - y).max(0.0),
                COLORS[i % COLORS.len()],
                escape(&r.policy),
                ["p50", "p90", "p99"][k]
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" transform=\"rotate(-30 {:.1} {:.1})\">{}</text>",
            x0 + group * (i as f64 + 0.5),
            y0 + ph + 16.0,
            x0 + group * (i as f64 + 0.5),
            y0 + ph + 16.0,
            escape(&r.policy)
        );
    }
    // Right: output tokens per second.
    let (x1, pw1) = (660.0, 270.0);
    let max_tp = results
        .iter()
        .map(|r| r.output_tokens_per_s)
        .fold(1.0f64, f64::max);
    let _ = writeln!(
        s,
        "<text x=\"{x1}\" y=\"{}\">output tokens/s</text>",
        y0 - 8.0
    );
    let group = pw1 / n;
    for (i, r) in results.iter().enumerate() {
        let bh = ph * r.output_tokens_per_s / max_tp;
        let x = x1 + group * i as f64 + group * 0.15;
        let _ = writeln!(
            s,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{}\"><title>{}: {:.0} tok/s</title></rect>",
            y0 + ph - bh,
            group * 0.7,
            COLORS[i % COLORS.len()],
            escape(&r.policy),
            r.output_tokens_per_s
        );
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{:.0}</text>",
            x + group * 0.35,
            y0 + ph - bh - 4.0,
            r.output_tokens_per_s
        );
    }
    s.push_str("</svg>\n");
    s
}

/// An SVG chart of TTFT p90 against offered rate, one line per policy.
pub fn svg_sweep(title: &str, rates: &[f64], results: &[Vec<PolicyResult>]) -> String {
    let (w, h, x0, y0, pw, ph) = (800.0, 420.0, 70.0, 50.0, 560.0, 300.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"20\" y=\"24\" font-size=\"16\">{}</text>\n",
        escape(title)
    );
    let max_rate = rates.iter().copied().fold(1e-9f64, f64::max);
    let max_t = results
        .iter()
        .flatten()
        .map(|r| r.ttft.p90)
        .fold(0.1f64, f64::max);
    let (lo, hi) = (0.01f64.log10(), max_t.max(0.02).log10() + 0.1);
    let x_of = |r: f64| x0 + pw * r / max_rate;
    let y_of = |v: f64| y0 + ph - ph * ((v.max(0.01).log10() - lo) / (hi - lo)).clamp(0.0, 1.0);
    let _ = writeln!(
        s,
        "<text x=\"{x0}\" y=\"{}\">TTFT p90 (s, log) vs offered rate (requests/s)</text>",
        y0 - 8.0
    );
    let _ = writeln!(
        s,
        "<line x1=\"{x0}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#333\"/>",
        x0 + pw,
        y0 + ph,
        y0 + ph
    );
    for r in rates {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{r}</text>",
            x_of(*r),
            y0 + ph + 16.0
        );
    }
    log_grid(&mut s, x0, pw, hi, y_of);
    let policies: Vec<&str> = results
        .first()
        .map(|row| row.iter().map(|r| r.policy.as_str()).collect())
        .unwrap_or_default();
    for (p, name) in policies.iter().enumerate() {
        let points: Vec<String> = rates
            .iter()
            .zip(results)
            .filter_map(|(rate, row)| {
                row.get(p)
                    .map(|r| format!("{:.1},{:.1}", x_of(*rate), y_of(r.ttft.p90)))
            })
            .collect();
        let color = COLORS[p % COLORS.len()];
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>",
            points.join(" ")
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" fill=\"{color}\">{}</text>",
            x0 + pw + 12.0,
            y0 + 16.0 * p as f64 + 10.0,
            escape(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

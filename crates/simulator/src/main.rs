//! `pointsman-sim`: compare scheduling policies on a simulated fleet.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use pointsman_sim::policy::Policy;
use pointsman_sim::report::{svg_bars, svg_sweep, table};
use pointsman_sim::sim::SimConfig;
use pointsman_sim::workload::{Arrivals, LoraShare, SharedPrefix, read_azure, read_mooncake};
use std::path::PathBuf;
use std::time::Instant;

/// Simulate a fleet of vLLM-like servers with pointsman routing, and compare policies.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one workload under several policies and print a comparison table (also written as
    /// JSON and SVG). With no options: a shared-prefix workload on 8 servers near saturation.
    Compare(CompareArgs),
}

#[derive(clap::Args, Debug, Default)]
struct CompareArgs {
    /// A trace to replay: `mooncake:PATH` (JSONL) or `azure:PATH` (CSV); default: generated.
    #[arg(long)]
    trace: Option<String>,
    /// Divide trace arrival times by this factor (compress time to raise the load).
    #[arg(long, default_value_t = 1.0)]
    speedup: f64,
    /// Policies: a baseline name (round-robin, random, least-queue, load-aware,
    /// reference-default, pointsman) or NAME=PATH to an EndpointPickerConfig YAML. Repeatable;
    /// default: every baseline.
    #[arg(long = "policy")]
    policies: Vec<String>,
    /// Servers in the fleet.
    #[arg(long, default_value_t = 8)]
    servers: usize,
    /// Spread of server speeds (0 = identical; 0.2 = ±20 %).
    #[arg(long, default_value_t = 0.0)]
    heterogeneity: f64,
    /// Seed for the workload, the fleet and the schedulers.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Generated workload: requests per second (Poisson).
    #[arg(long)]
    rate: Option<f64>,
    /// Generated workload: constant instead of Poisson arrivals.
    #[arg(long)]
    constant: bool,
    /// Generated workload: number of requests.
    #[arg(long)]
    requests: Option<usize>,
    /// Generated workload: prompt groups (each with its own system prompt).
    #[arg(long)]
    groups: Option<usize>,
    /// Generated workload: distinct questions per group.
    #[arg(long)]
    prompts_per_group: Option<usize>,
    /// Generated workload: system prompt tokens.
    #[arg(long)]
    system_tokens: Option<u32>,
    /// Generated workload: question tokens.
    #[arg(long)]
    question_tokens: Option<u32>,
    /// Generated workload: output tokens.
    #[arg(long)]
    output_tokens: Option<u32>,
    /// Generated workload: turns per conversation.
    #[arg(long)]
    turns: Option<u32>,
    /// Generated workload: a LoRA adapter and its share of requests, NAME=SHARE. Repeatable.
    #[arg(long = "lora")]
    loras: Vec<String>,
    /// Generated workload: fraction of sheddable requests.
    #[arg(long)]
    sheddable: Option<f64>,
    /// Generated workload: sweep these rates (comma-separated) instead of one run.
    #[arg(long, value_delimiter = ',')]
    sweep: Vec<f64>,
    /// Goodput SLO on time to first token, seconds.
    #[arg(long, default_value_t = 2.0)]
    slo_ttft: f64,
    /// Goodput SLO on time per output token, seconds.
    #[arg(long, default_value_t = 0.1)]
    slo_tpot: f64,
    /// Directory for the JSON and SVG results.
    #[arg(long, default_value = "pointsman-sim-out")]
    out: PathBuf,
}

fn default_workload() -> SharedPrefix {
    SharedPrefix::embedded_default()
}

fn main() {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Compare(a)) => a,
        None => CompareArgs {
            speedup: 1.0,
            servers: 8,
            seed: 1,
            slo_ttft: 2.0,
            slo_tpot: 0.1,
            out: "pointsman-sim-out".into(),
            ..CompareArgs::default()
        },
    };
    if let Err(e) = compare(args) {
        eprintln!("pointsman-sim: {e:#}");
        std::process::exit(1);
    }
}

fn policies(names: &[String]) -> Result<Vec<Policy>> {
    if names.is_empty() {
        return Ok(Policy::baselines());
    }
    names
        .iter()
        .map(|n| match n.split_once('=') {
            Some((name, path)) => {
                let yaml = std::fs::read_to_string(path).with_context(|| format!("reading policy {name} from {path}"))?;
                Ok(Policy::from_yaml(name, &yaml))
            }
            None => Policy::baseline(n).with_context(|| format!("unknown baseline {n:?}: expected round-robin, random, least-queue, load-aware, reference-default, pointsman, or NAME=PATH.yaml")),
        })
        .collect()
}

fn compare(a: CompareArgs) -> Result<()> {
    let cfg = SimConfig {
        servers: a.servers,
        heterogeneity: a.heterogeneity,
        seed: a.seed,
        slo_ttft: a.slo_ttft,
        slo_tpot: a.slo_tpot,
        ..SimConfig::default()
    };
    let block = cfg.server.block_size;
    let policies = policies(&a.policies)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let started = Instant::now();

    let mut w = default_workload();
    if let Some(r) = a.rate {
        w.arrivals = Arrivals::Poisson { rate: r };
    }
    if a.constant {
        w.arrivals = Arrivals::Constant {
            rate: w.arrivals.rate(),
        };
    }
    w.requests = a.requests.unwrap_or(w.requests);
    w.groups = a.groups.unwrap_or(w.groups);
    w.prompts_per_group = a.prompts_per_group.unwrap_or(w.prompts_per_group);
    w.system_tokens = a.system_tokens.unwrap_or(w.system_tokens);
    w.question_tokens = a.question_tokens.unwrap_or(w.question_tokens);
    w.output_tokens = a.output_tokens.unwrap_or(w.output_tokens);
    w.turns = a.turns.unwrap_or(w.turns);
    w.sheddable = a.sheddable.unwrap_or(w.sheddable);
    for l in &a.loras {
        let (name, share) = l
            .split_once('=')
            .with_context(|| format!("--lora {l:?}: expected NAME=SHARE, e.g. sql-lora=0.2"))?;
        let share: f64 = share
            .parse()
            .with_context(|| format!("--lora {l:?}: the share must be a number"))?;
        w.loras.push(LoraShare {
            name: name.to_string(),
            share,
        });
    }

    if !a.sweep.is_empty() {
        if a.trace.is_some() {
            bail!("--sweep applies to generated workloads, not to --trace");
        }
        let mut rows = Vec::new();
        for &rate in &a.sweep {
            let mut wr = w.clone();
            wr.arrivals = wr.arrivals.with_rate(rate);
            let requests = wr.generate(block, a.seed)?;
            let results = pointsman_sim::compare(&requests, &policies, &cfg)?;
            println!("== offered rate {rate} req/s ==\n{}", table(&results));
            rows.push(results);
        }
        let json =
            serde_json::json!({"workload": w, "sim": cfg, "rates": a.sweep, "results": rows});
        write(&a.out, "sweep.json", &serde_json::to_string_pretty(&json)?)?;
        write(
            &a.out,
            "sweep.svg",
            &svg_sweep("TTFT p90 against offered rate", &a.sweep, &rows),
        )?;
        println!(
            "wrote {}/sweep.json and sweep.svg in {:.1}s",
            a.out.display(),
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }

    let (label, requests, workload_json) = match a.trace.as_deref() {
        None => (
            w.label(),
            w.generate(block, a.seed)?,
            serde_json::to_value(&w)?,
        ),
        Some(t) => {
            let (kind, path) = t
                .split_once(':')
                .with_context(|| format!("--trace {t:?}: expected mooncake:PATH or azure:PATH"))?;
            let path = PathBuf::from(path);
            let requests = match kind {
                "mooncake" => read_mooncake(&path, block, a.speedup)?,
                "azure" => read_azure(&path, block, a.speedup)?,
                other => bail!("--trace kind {other:?}: expected mooncake or azure"),
            };
            (
                format!(
                    "{kind} trace {} ({} requests, speedup {})",
                    path.display(),
                    requests.len(),
                    a.speedup
                ),
                requests,
                serde_json::json!({"trace": t, "speedup": a.speedup}),
            )
        }
    };
    let results = pointsman_sim::compare(&requests, &policies, &cfg)?;
    println!(
        "workload: {label}\nfleet: {} servers (Llama-3.1-8B on H100, vLLM-like), scrape every {} ms\n",
        cfg.servers,
        cfg.scrape_interval * 1e3
    );
    print!("{}", table(&results));
    let json = serde_json::json!({"workload": workload_json, "sim": cfg, "results": results});
    write(
        &a.out,
        "compare.json",
        &serde_json::to_string_pretty(&json)?,
    )?;
    write(&a.out, "compare.svg", &svg_bars(&label, &results))?;
    println!(
        "\nwrote {}/compare.json and compare.svg; simulated in {:.1}s",
        a.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn write(dir: &std::path::Path, name: &str, contents: &str) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))
}

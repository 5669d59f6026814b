//! `bulkhead run FILE`: load, run once, report.

use super::{progress::Progress, summary, PluginsArg, EXIT_INVALID};
use bulkhead::exec::{LogObserver, Observer};
use bulkhead::report::RunStatus;
use bulkhead::telemetry::{self, LogFormat};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// Arguments of `bulkhead run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The workflow file.
    file: PathBuf,
    /// A run parameter, `KEY=VALUE` (VALUE is read as JSON if it parses, else as a string).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    params: Vec<(String, serde_json::Value)>,
    #[command(flatten)]
    plugins: PluginsArg,
    /// Attempts at once across the host (also the size of the sandbox pool).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_parallel: u32,
    /// Print the run report as one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_param(text: &str) -> Result<(String, serde_json::Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))?;
    if key.is_empty() {
        return Err(format!("`{text}` has an empty KEY"));
    }
    let value = serde_json::from_str(value)
        .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
    Ok((key.to_string(), value))
}

/// Runs the command; returns the process exit code.
pub fn main(args: RunArgs, log_format: LogFormat, cache_dir: PathBuf) -> ExitCode {
    let interactive = std::io::stderr().is_terminal() && log_format == LogFormat::Text;
    telemetry::init(log_format, if interactive { "warn" } else { "info" });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args, interactive, cache_dir))
}

async fn run(args: RunArgs, interactive: bool, cache_dir: PathBuf) -> ExitCode {
    let host = match super::host(&args.plugins.dir, cache_dir, args.max_parallel as usize) {
        Ok(h) => h,
        Err(code) => return code,
    };
    let loaded = match host.load(&args.file) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let mut params = serde_json::Map::new();
    for (k, v) in args.params {
        params.insert(k, v);
    }

    let cancel = CancellationToken::new();
    tokio::spawn(stop_on_signal(cancel.clone()));

    let run_id = bulkhead::new_run_id();
    eprintln!(
        "run {run_id}: workflow `{}` ({} tasks)",
        loaded.workflow.name,
        loaded.workflow.tasks.len()
    );
    let progress = interactive.then(|| Progress::new(loaded.workflow.tasks.len()));
    let observer: &dyn Observer = match &progress {
        Some(p) => p,
        None => &LogObserver,
    };
    let report = host
        .run(
            &loaded,
            run_id,
            serde_json::Value::Object(params),
            observer,
            cancel,
        )
        .await;
    if let Some(p) = progress {
        p.finish();
    }
    eprint!("{}", summary::render(&report));
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("error: cannot write the JSON report: {e}"),
        }
    }
    match report.status {
        RunStatus::Succeeded => ExitCode::SUCCESS,
        RunStatus::Failed | RunStatus::Cancelled => ExitCode::FAILURE,
    }
}

/// Ctrl-C or SIGTERM cancels the run cleanly; a second one exits at once.
async fn stop_on_signal(cancel: CancellationToken) {
    for round in 0..2 {
        wait_for_signal().await;
        if round == 0 {
            eprintln!(
                "\nstopping: interrupting running attempts (press Ctrl-C again to exit at once)"
            );
            cancel.cancel();
        } else {
            std::process::exit(130);
        }
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

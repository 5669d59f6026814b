//! `bulkhead serve` and `bulkhead trigger`.

use super::{State, EXIT_INVALID};
use bulkhead::serve::Server;
use bulkhead::store::{NewTrigger, TriggerKind};
use bulkhead::trigger::{Clock, ShiftedClock, SystemClock};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Arguments of `bulkhead serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Folder of workflow files (`*.yaml`, `*.yml`), watched for changes.
    #[arg(long, default_value = "workflows", env = "BULKHEAD_WORKFLOWS")]
    workflows: PathBuf,
    #[command(flatten)]
    plugins: super::PluginsArg,
    /// Address of the HTTP API.
    #[arg(long, default_value = "127.0.0.1:8080", env = "BULKHEAD_LISTEN")]
    listen: SocketAddr,
    /// Bearer token required by mutating API calls. Without one, serve listens on loopback only.
    #[arg(long, env = "BULKHEAD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Require the token for reads too (everything but `/healthz` and the UI's files). On by
    /// default when listening beyond loopback; `--token-for-reads=false` turns it off.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", env = "BULKHEAD_TOKEN_FOR_READS")]
    token_for_reads: Option<bool>,
    /// On SIGTERM, how long running attempts may finish before they are interrupted.
    #[arg(long, default_value = "10s", value_parser = |s: &str| bulkhead::workflow::parse_duration(s))]
    grace: Duration,
    /// Attempts at once across the host.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_parallel: u32,
    /// HTTP connections open at once; beyond, a new one is answered 503 and closed.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_connections: u32,
    /// HTTP connections open at once from one client address (one request at a time each);
    /// beyond, a new one is answered 429 and closed.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_connections_per_client: u32,
    /// Time a connection has to send a whole request header, new or idle between requests.
    #[arg(long, default_value = "10s", value_parser = |s: &str| bulkhead::workflow::parse_duration(s))]
    header_timeout: Duration,
    /// Testing aid: start the scheduler's clock at this RFC 3339 time instead of now.
    #[arg(long, hide = true)]
    clock_start: Option<String>,
}

/// Runs the server until SIGTERM or Ctrl-C.
pub fn serve(args: ServeArgs, state: &State) -> ExitCode {
    if args
        .token
        .as_deref()
        .is_some_and(|t| t.trim().is_empty() || t.trim() != t || t.chars().any(char::is_control))
    {
        eprintln!("error: --token is empty, or has spaces or control characters around or in it\n  help: use a long random string, e.g. `openssl rand -hex 32`");
        return ExitCode::from(EXIT_INVALID);
    }
    if args.token.is_none() && !args.listen.ip().is_loopback() {
        eprintln!(
            "error: refusing to listen on {} without a token: anyone could start and cancel runs\n  help: pass `--token` (or set BULKHEAD_TOKEN), or listen on 127.0.0.1",
            args.listen
        );
        return ExitCode::from(EXIT_INVALID);
    }
    let token_for_reads = args
        .token_for_reads
        .unwrap_or(!args.listen.ip().is_loopback());
    if token_for_reads && args.token.is_none() {
        eprintln!("error: --token-for-reads needs a token\n  help: pass `--token` (or set BULKHEAD_TOKEN)");
        return ExitCode::from(EXIT_INVALID);
    }
    if !args.workflows.is_dir() {
        eprintln!(
            "error: the workflow folder {} does not exist\n  help: pass `--workflows DIR` or set BULKHEAD_WORKFLOWS",
            args.workflows.display()
        );
        return ExitCode::from(EXIT_INVALID);
    }
    let clock: Arc<dyn Clock> = match &args.clock_start {
        None => Arc::new(SystemClock),
        Some(t) => match chrono::DateTime::parse_from_rfc3339(t) {
            Ok(t) => Arc::new(ShiftedClock::starting_at(t.timestamp_millis())),
            Err(e) => {
                eprintln!("error: --clock-start `{t}` is not an RFC 3339 time: {e}");
                return ExitCode::from(EXIT_INVALID);
            }
        },
    };
    super::block_on(async move {
        let mut host = match state
            .host(
                &args.plugins.dir,
                args.max_parallel as usize,
                bulkhead::Commits::Grouped,
            )
            .await
        {
            Ok(h) => h,
            Err(code) => return code,
        };
        host.guard(bulkhead::Guarded::path(
            &args.workflows,
            "the workflow folder",
        ));
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        // Listen for a stop before the first load: a compile under way is abandoned.
        let shutdown = CancellationToken::new();
        tokio::spawn(signal(shutdown.clone(), host.sandbox().clone()));
        let workflows = args.workflows.clone();
        let server = match tokio::task::spawn_blocking(move || {
            Server::new(host, workflows, clock, args.grace)
        })
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("error: cannot start: {e}");
                return ExitCode::FAILURE;
            }
        };
        server.restore_last_success().await;
        let bound = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("error: cannot read the address of {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        let addr = bound.to_string();
        eprintln!("listening on http://{addr}");
        tracing::info!(%addr, workflows = %args.workflows.display(), "serving");
        let app = bulkhead::api::router(
            server.clone(),
            bulkhead::api::Access {
                token: args.token.clone(),
                token_for_reads,
            },
            bound,
        );
        let limits = bulkhead::api::ListenLimits {
            max_connections: args.max_connections as usize,
            max_per_client: args.max_connections_per_client as usize,
            header_timeout: args.header_timeout,
        };
        let http = tokio::spawn(bulkhead::api::serve_http(
            listener,
            app,
            limits,
            shutdown.clone(),
            args.grace,
        ));
        server.run(shutdown).await;
        match http.await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: the HTTP server failed: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn signal(shutdown: CancellationToken, sandbox: std::sync::Arc<bulkhead::sandbox::Sandbox>) {
    super::run::wait_for_signal().await;
    eprintln!("stopping: no new runs; running attempts may finish");
    sandbox.stop_compiling();
    shutdown.cancel();
    super::run::wait_for_signal().await;
    std::process::exit(130);
}

/// `bulkhead trigger WORKFLOW [--param K=V]... [--at TIME | --in DURATION]`.
pub fn trigger(
    state: &State,
    workflows: &Path,
    workflow: String,
    params: Vec<(String, String)>,
    at: Option<String>,
    after: Option<Duration>,
) -> ExitCode {
    let found = workflows_in(workflows);
    let Some(wf) = found.iter().find(|w| w.name == workflow) else {
        let names = found.iter().map(|w| w.name.as_str());
        let hint = bulkhead::suggest::did_you_mean(&workflow, names);
        eprintln!(
            "error: no workflow named `{workflow}` in {}{hint}\n  help: pass `--workflows DIR` or set BULKHEAD_WORKFLOWS",
            workflows.display()
        );
        return ExitCode::from(EXIT_INVALID);
    };
    let params = match super::run::resolve_params(wf, params) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let now = bulkhead::store::now_ms();
    let due_at = match (at, after) {
        (Some(at), _) => match bulkhead::trigger::due_time(&at, now) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: --at {e}");
                return ExitCode::from(EXIT_INVALID);
            }
        },
        (None, Some(d)) if d.as_millis() as i64 > bulkhead::trigger::AT_MAX_AHEAD_MS => {
            eprintln!(
                "error: --in {}: a one-off run can be scheduled at most 366 days ahead",
                humantime::format_duration(d)
            );
            return ExitCode::from(EXIT_INVALID);
        }
        (None, Some(d)) => now + d.as_millis() as i64,
        (None, None) => now,
    };
    let run_id = bulkhead::new_run_id();
    let trigger = NewTrigger {
        kind: TriggerKind::Once,
        workflow: workflow.clone(),
        params,
        due_at,
        created_at: now,
        run_id: run_id.clone(),
    };
    super::block_on(async move {
        let store = match state.open_store().await {
            Ok(s) => s.store,
            Err(code) => return code,
        };
        match store.add_trigger(trigger).await {
            Ok(_) => {
                println!("{run_id}");
                eprintln!(
                    "run {run_id} of `{workflow}` is due at {}; `bulkhead serve` starts it",
                    bulkhead::store::rfc3339(due_at)
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Names of the workflows defined in a folder (files that do not parse are skipped).
/// The valid workflows of the folder `dir`.
fn workflows_in(dir: &Path) -> Vec<bulkhead::workflow::Workflow> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .filter_map(|p| bulkhead::workflow::load(&p).ok())
        .collect()
}

//! `bulkhead run FILE`, `bulkhead resume RUN_ID`, `bulkhead retry RUN_ID TASK`: execute a run,
//! show progress, handle Ctrl-C, report.

use super::{progress::Progress, summary, PluginsArg, State, EXIT_INVALID};
use bulkhead::exec::{LogObserver, Observer, Stop};
use bulkhead::report::{Filled, RunReport, RunStatus, TaskReport};
use bulkhead::telemetry::{self, LogFormat};
use bulkhead::{ErrorClass, Host};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Options shared by every command that executes a run.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecArgs {
    #[command(flatten)]
    plugins: PluginsArg,
    /// Attempts at once across the host (also the size of the sandbox pool).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_parallel: u32,
    /// On Ctrl-C or SIGTERM, how long running attempts may finish before they are interrupted.
    #[arg(long, default_value = "10s", value_parser = parse_grace)]
    grace: Duration,
    /// Print the run report as one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

/// What to execute.
pub enum Job {
    /// A new run of a workflow file.
    Run {
        file: PathBuf,
        params: Vec<(String, String)>,
    },
    /// Continue an unfinished run (or all of them).
    Resume { run_id: Option<String> },
    /// Run a failed task again.
    Retry { run_id: String, task: String },
}

fn parse_grace(text: &str) -> Result<Duration, String> {
    bulkhead::workflow::parse_duration(text)
}

/// `KEY=VALUE`. The value is read by the type the workflow declares for KEY (docs/workflow.md,
/// "params"); where it declares none, as JSON if it parses, else as a string.
pub fn parse_param(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))?;
    if key.is_empty() {
        return Err(format!("`{text}` has an empty KEY"));
    }
    Ok((key.to_string(), value.to_string()))
}

/// The run parameters of `--param` arguments for `workflow`, checked against its `params:`;
/// every problem printed (each naming the parameter) and exit code 2 when one is wrong.
pub fn resolve_params(
    workflow: &bulkhead::workflow::Workflow,
    given: Vec<(String, String)>,
) -> Result<serde_json::Value, ExitCode> {
    use bulkhead::workflow::params::{resolve, Given};
    let given = given
        .into_iter()
        .map(|(k, v)| (k, Given::Text(v)))
        .collect();
    match resolve(&workflow.params, given) {
        Ok(p) => Ok(serde_json::Value::Object(p)),
        Err(problems) => {
            for p in problems {
                eprintln!("error: workflow `{}`: {p}", workflow.name);
            }
            eprintln!("nothing ran");
            Err(ExitCode::from(EXIT_INVALID))
        }
    }
}

/// Runs the job; returns the process exit code.
pub fn main(job: Job, args: ExecArgs, state: &State, log_format: LogFormat) -> ExitCode {
    let interactive = std::io::stderr().is_terminal() && log_format == LogFormat::Text;
    telemetry::init(log_format, if interactive { "warn" } else { "info" });
    let state = state.clone();
    super::block_on_worker(async move { execute(job, args, &state, interactive).await })
}

async fn execute(job: Job, args: ExecArgs, state: &State, interactive: bool) -> ExitCode {
    // A new run with `--store :memory:` is recorded nowhere (`State::unrecorded_host`), and no
    // run of another process can be continued from memory.
    if state.in_memory() && !matches!(job, Job::Run { .. }) {
        let verb = match job {
            Job::Retry { .. } => "retry",
            _ => "resume",
        };
        eprintln!("error: `--store :memory:` keeps no run past the process that ran it: there is no run to {verb}\n  help: pass the `--store` (or BULKHEAD_STORE) the run was recorded in");
        return ExitCode::from(EXIT_INVALID);
    }
    let host = if state.in_memory() {
        state.unrecorded_host(&args.plugins.dir, args.max_parallel as usize)
    } else {
        // One run at a time: each commit in place, not handed to a writer thread and back.
        state
            .host(
                &args.plugins.dir,
                args.max_parallel as usize,
                bulkhead::Commits::InPlace,
            )
            .await
    };
    let host = match host {
        Ok(h) => h,
        Err(code) => return code,
    };
    let stop = Stop {
        grace: args.grace,
        ..Stop::default()
    };
    tokio::spawn(stop_on_signal(
        stop.clone(),
        args.grace,
        host.sandbox().clone(),
    ));
    let mut worst = ExitCode::SUCCESS;
    let runs: Vec<Job> = match job {
        Job::Resume { run_id: None } => {
            let Some(store) = host.store() else {
                return ExitCode::from(EXIT_INVALID);
            };
            match store.unfinished(bulkhead::store::now_ms()).await {
                Ok(ids) if ids.is_empty() => {
                    eprintln!("no interrupted runs to resume");
                    return ExitCode::SUCCESS;
                }
                Ok(ids) => ids
                    .into_iter()
                    .map(|id| Job::Resume { run_id: Some(id) })
                    .collect(),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        other => vec![other],
    };
    for job in runs {
        if stop.drain.is_cancelled() {
            break;
        }
        let code = one(&host, job, &args, interactive, stop.for_run()).await;
        if code != ExitCode::SUCCESS {
            worst = code;
        }
    }
    worst
}

async fn one(host: &Host, job: Job, args: &ExecArgs, interactive: bool, stop: Stop) -> ExitCode {
    let ends_process = matches!(job, Job::Run { .. });
    let (label, result) = match job {
        Job::Run { file, params } => {
            // Compiling can take a while: off the async workers, so a signal is heard.
            let loaded = tokio::task::block_in_place(|| host.load(&file));
            if stop.drain.is_cancelled() {
                eprintln!("stopped before the run started: nothing ran");
                return ExitCode::FAILURE;
            }
            let loaded = match loaded {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            let params = match resolve_params(&loaded.workflow, params) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let run_id = bulkhead::new_run_id();
            eprintln!(
                "run {run_id}: workflow `{}` ({} tasks)",
                loaded.workflow.name,
                loaded.workflow.tasks.len()
            );
            let n = loaded.workflow.tasks.len();
            let progress = interactive.then(|| Progress::new(n));
            let observer: &dyn Observer = progress.as_ref().map_or(&LogObserver, |p| p);
            let r = host
                .run(&loaded, run_id.clone(), params, observer, stop)
                .await;
            if let Some(p) = progress {
                p.finish();
            }
            // A new run is the process's only one, and the process ends when it is reported:
            // freeing a large workflow piece by piece would only delay that (13 ms of a
            // 100,000-task run); the kernel takes the memory back at once.
            std::mem::forget(loaded);
            (run_id, r)
        }
        Job::Resume {
            run_id: Some(run_id),
        } => {
            eprintln!("resuming run {run_id}");
            (
                run_id.clone(),
                host.resume(&run_id, &LogObserver, stop).await,
            )
        }
        Job::Retry { run_id, task } => {
            eprintln!("retrying task `{task}` of run {run_id}");
            (
                run_id.clone(),
                host.retry(&run_id, &task, &LogObserver, stop).await,
            )
        }
        Job::Resume { run_id: None } => return ExitCode::from(EXIT_INVALID),
    };
    match result {
        Ok(report) => {
            let code = finish(host, &report, args.json);
            if ends_process {
                // As with the workflow above: the process ends next (5 ms of 100,000 tasks).
                std::mem::forget(report);
            }
            code
        }
        Err(e) => match e.class() {
            ErrorClass::Invalid | ErrorClass::NotFound | ErrorClass::Conflict => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_INVALID)
            }
            ErrorClass::Busy => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
            ErrorClass::Internal => {
                eprintln!("error: {e}\n  the run stopped; what was committed is kept: continue with `bulkhead resume {label}`");
                ExitCode::FAILURE
            }
        },
    }
}
fn finish(host: &Host, report: &RunReport, json: bool) -> ExitCode {
    eprint!("{}", summary::render(report));
    if report.status == RunStatus::Interrupted {
        eprintln!("continue it with: bulkhead resume {}", report.run_id);
    }
    if json {
        if let Err(e) = write_json(host, report) {
            eprintln!("error: cannot write the JSON report: {e}");
            return ExitCode::FAILURE;
        }
    }
    match report.status {
        RunStatus::Succeeded => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// Writes the report on stdout. A recorded run keeps its finished tasks' outputs and logs in
/// the store, not in memory; they are read back a page at a time as the report is written.
fn write_json(host: &Host, report: &RunReport) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
    match host.store() {
        None => serde_json::to_writer_pretty(&mut out, report)?,
        Some(store) => {
            // Pages of up to a thousand tasks, bounded by bytes: one task may hold max_logs +
            // max_output (2 MiB by default), most hold a few bytes.
            // The next page is read (on a blocking thread) while this one is written.
            const PAGE: usize = 1024;
            const PAGE_BYTES: usize = 8 << 20;
            let runtime = tokio::runtime::Handle::current();
            let read_page = |from: usize| {
                let (store, run_id) = (store.clone(), report.run_id.clone());
                runtime
                    .spawn(async move { store.task_results(&run_id, from, PAGE, PAGE_BYTES).await })
            };
            let (mut page, mut next) = (std::collections::VecDeque::new(), 0usize);
            let mut reading = Some(read_page(0));
            tokio::task::block_in_place(|| {
                let fill = |id: &str, task: &TaskReport| -> Result<TaskReport, String> {
                    if page.is_empty() {
                        let read = reading.take().unwrap_or_else(|| read_page(next));
                        page = runtime
                            .block_on(read)
                            .map_err(|e| format!("reading the report's tasks failed: {e}"))?
                            .map_err(|e| e.to_string())?
                            .into();
                        next += page.len();
                        if next < report.tasks.len() {
                            reading = Some(read_page(next));
                        }
                    }
                    let stored = page.pop_front().filter(|r| r.task == id).ok_or_else(|| {
                        format!(
                            "the state store has no task `{id}` at its place in run `{}`; the store was altered",
                            report.run_id
                        )
                    })?;
                    let mut task = task.clone();
                    task.output = stored.output.unwrap_or_default();
                    task.log = stored.log;
                    Ok(task)
                };
                serde_json::to_writer_pretty(&mut out, &Filled::new(report, fill))
            })?;
        }
    }
    writeln!(out)?;
    out.flush()
}

/// First Ctrl-C or SIGTERM: graceful stop (running attempts get `grace`, a compile under way is
/// abandoned); second: interrupt them now; third: exit at once.
async fn stop_on_signal(
    stop: Stop,
    grace: Duration,
    sandbox: std::sync::Arc<bulkhead::sandbox::Sandbox>,
) {
    wait_for_signal().await;
    eprintln!("\nstopping: no new attempts; running ones have {grace:?} to finish (Ctrl-C again to interrupt them now)");
    sandbox.stop_compiling();
    stop.drain.cancel();
    wait_for_signal().await;
    eprintln!("\ninterrupting running attempts (Ctrl-C again to exit at once)");
    stop.hurry.cancel();
    wait_for_signal().await;
    std::process::exit(130);
}

#[cfg(unix)]
pub async fn wait_for_signal() {
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
pub async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

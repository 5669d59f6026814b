//! The `bulkhead` command line. Parses arguments, calls the library, renders results and errors.
//! Exit codes (docs/architecture.md, "Command line and exit codes"): 0 success, 1 the run failed, 2 invalid input (nothing ran).

mod cli;

use clap::{Parser, Subcommand};
use cli::run::{ExecArgs, Job};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Bulkhead: run DAGs of sandboxed WebAssembly tasks.
#[derive(Debug, Parser)]
#[command(name = "bulkhead", version, about, propagate_version = true)]
struct Args {
    /// Log line format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "BULKHEAD_LOG_FORMAT"
    )]
    log_format: bulkhead::telemetry::LogFormat,
    /// Folder of compiled plugins kept between runs.
    #[arg(
        long,
        global = true,
        default_value = ".bulkhead/cache",
        env = "BULKHEAD_CACHE_DIR"
    )]
    cache_dir: PathBuf,
    /// The state store where runs are recorded: a SQLite file, `:memory:` (nothing durable), or a
    /// PostgreSQL database `postgres://USER@HOST:PORT/DATABASE` shared by several hosts.
    #[arg(long, global = true, default_value = cli::DEFAULT_STORE, env = "BULKHEAD_STORE")]
    store: PathBuf,
    /// Largest plugin file accepted (e.g. `128MiB`).
    #[arg(long, global = true, default_value = "128MiB", env = "BULKHEAD_MAX_MODULE_SIZE", value_parser = parse_size)]
    max_module_size: u64,
    /// Wall-clock time compiling one plugin may take.
    #[arg(long, global = true, default_value = "120s", env = "BULKHEAD_COMPILE_TIMEOUT", value_parser = |s: &str| bulkhead::workflow::parse_duration(s))]
    compile_timeout: Duration,
    /// Memory compiling one plugin may use (at least 64MiB).
    #[arg(long, global = true, default_value = "4GiB", env = "BULKHEAD_COMPILE_MEMORY", value_parser = parse_size)]
    compile_memory: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workflow once and report how every task ended. Prints the run id first.
    Run {
        /// The workflow file.
        file: PathBuf,
        /// A run parameter, `KEY=VALUE`, read by the type the workflow's `params:` declares
        /// (where it declares none: as JSON if it parses, else as a string).
        #[arg(long = "param", value_name = "KEY=VALUE", value_parser = cli::run::parse_param)]
        params: Vec<(String, String)>,
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Continue a run that was interrupted (host killed or stopped): finished tasks are kept.
    Resume {
        /// The run to continue.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        run_id: Option<String>,
        /// Resume every interrupted run.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Run a failed task of a run again, with the dependents it skipped.
    Retry {
        /// The run.
        run_id: String,
        /// The failed task.
        task: String,
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Serve: run scheduled and triggered workflows, watch the folders, serve the HTTP API.
    Serve(cli::serve::ServeArgs),
    /// Record a run of a workflow for `bulkhead serve` to start, now or later.
    Trigger {
        /// The workflow's name.
        workflow: String,
        /// A run parameter, `KEY=VALUE`, checked against the workflow's `params:`.
        #[arg(long = "param", value_name = "KEY=VALUE", value_parser = cli::run::parse_param)]
        params: Vec<(String, String)>,
        /// When (RFC 3339), e.g. 2026-11-23T02:00:00Z.
        #[arg(long, conflicts_with = "after")]
        at: Option<String>,
        /// In how long, e.g. `10m` (`0s`: now).
        #[arg(long = "in", value_parser = |s: &str| if s == "0" { Ok(Duration::ZERO) } else { bulkhead::workflow::parse_duration(s) })]
        after: Option<Duration>,
        /// Folder of workflow files (to check the name).
        #[arg(long, default_value = "workflows", env = "BULKHEAD_WORKFLOWS")]
        workflows: PathBuf,
    },
    /// Cancel a run (the host running it stops it; it will not be resumed).
    Cancel {
        /// The run.
        run_id: String,
    },
    /// List the `bulkhead serve` hosts on this store whose heartbeat is recent: their slots in
    /// use and last heartbeat (every host of a cluster on PostgreSQL).
    Hosts {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// List runs, newest first.
    Runs {
        /// Only runs of this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Only runs with this status.
        #[arg(long)]
        status: Option<String>,
        /// At most this many (0: all).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show a run: tasks and every attempt (kind, duration, fuel, peak memory).
    Show {
        /// The run.
        run_id: String,
        /// Print the run report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the logs (stderr) of a run's attempts.
    Logs {
        /// The run.
        run_id: String,
        /// Only this task.
        task: Option<String>,
        /// Only this attempt.
        #[arg(long)]
        attempt: Option<u32>,
        /// Print the logs byte for byte; by default control characters and bidirectional marks
        /// are shown as escapes (`\x1b`), so a plugin cannot drive your terminal.
        #[arg(long)]
        raw: bool,
    },
    /// Delete finished runs older than a duration, and the plugin copies no run needs.
    Gc {
        /// E.g. `30d`, `12h`.
        #[arg(long, value_parser = |s: &str| bulkhead::workflow::parse_duration(s))]
        older_than: Duration,
        /// Prune the compiled-plugin cache, oldest first, to at most this size (e.g. `1GiB`).
        #[arg(long, default_value = "1GiB", value_parser = |s: &str| bulkhead::workflow::parse_size(&bulkhead::workflow::SizeSpec::Text(s.into())))]
        cache_max: u64,
    },
    /// Check workflow files (YAML, graph, limits, plugins) without running anything.
    Validate {
        /// Workflow files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        plugins: cli::PluginsArg,
    },
    /// Print a workflow's dependency graph.
    Graph {
        /// Workflow file.
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "dot")]
        format: cli::graph::GraphFormat,
    },
    /// List the plugins of the plugin folder: name, size, content hash, whether it loads, ABI.
    Plugins {
        #[command(flatten)]
        plugins: cli::PluginsArg,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Measure per-task overhead, throughput and plugin load times (uses the `noop` plugin).
    Bench(cli::bench::BenchArgs),
    /// Print the JSON Schema of the workflow format.
    Schema,
    /// (Internal) Compile one module read on stdin under limits; used by the host itself.
    #[command(name = "__compile", hide = true)]
    Compile {
        #[arg(long)]
        memory: u64,
        #[arg(long)]
        cpu_seconds: u64,
    },
}

fn parse_size(text: &str) -> Result<u64, String> {
    bulkhead::workflow::parse_size(&bulkhead::workflow::SizeSpec::Text(text.into()))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let state = cli::State {
        store: args.store,
        cache_dir: args.cache_dir,
        compile: bulkhead::sandbox::compile::CompileBounds {
            max_module_size: args.max_module_size,
            timeout: args.compile_timeout,
            memory: args.compile_memory,
        },
    };
    let quiet = |format| bulkhead::telemetry::init(format, "warn");
    match args.command {
        Command::Run { file, params, exec } => {
            cli::run::main(Job::Run { file, params }, exec, &state, args.log_format)
        }
        Command::Resume { run_id, exec, .. } => {
            cli::run::main(Job::Resume { run_id }, exec, &state, args.log_format)
        }
        Command::Retry { run_id, task, exec } => {
            cli::run::main(Job::Retry { run_id, task }, exec, &state, args.log_format)
        }
        Command::Serve(serve) => {
            bulkhead::telemetry::init(args.log_format, "info");
            cli::serve::serve(serve, &state)
        }
        Command::Trigger {
            workflow,
            params,
            at,
            after,
            workflows,
        } => {
            quiet(args.log_format);
            cli::serve::trigger(&state, &workflows, workflow, params, at, after)
        }
        Command::Cancel { run_id } => {
            quiet(args.log_format);
            cli::history::cancel(&state, run_id)
        }
        Command::Hosts { json } => {
            quiet(args.log_format);
            cli::history::hosts(&state, json)
        }
        Command::Runs {
            workflow,
            status,
            limit,
            json,
        } => {
            quiet(args.log_format);
            cli::history::runs(&state, workflow, status, limit, json)
        }
        Command::Show { run_id, json } => {
            quiet(args.log_format);
            cli::history::show(&state, run_id, json)
        }
        Command::Logs {
            run_id,
            task,
            attempt,
            raw,
        } => {
            quiet(args.log_format);
            cli::history::logs(&state, run_id, task, attempt, raw)
        }
        Command::Gc {
            older_than,
            cache_max,
        } => {
            quiet(args.log_format);
            cli::history::gc(&state, older_than, cache_max)
        }
        Command::Validate { files, plugins } => {
            quiet(args.log_format);
            cli::validate(&files, &plugins, &state)
        }
        Command::Graph { file, format } => cli::graph(&file, format),
        Command::Plugins { plugins, json } => {
            quiet(args.log_format);
            cli::plugins(&plugins, &state, json)
        }
        Command::Bench(bench) => cli::bench::main(bench, &state),
        Command::Compile {
            memory,
            cpu_seconds,
        } => {
            let code = bulkhead::sandbox::compile::child_main(memory, cpu_seconds);
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        Command::Schema => {
            print!("{}", bulkhead::workflow::json_schema());
            ExitCode::SUCCESS
        }
    }
}

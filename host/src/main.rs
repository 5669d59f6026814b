//! The `bulkhead` command line. Parses arguments, calls the library, renders results and errors.
//! Exit codes (DESIGN.md section 4): 0 success, 1 the run failed, 2 invalid input (nothing ran).

mod cli;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workflow once and report how every task ended.
    Run(cli::run::RunArgs),
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
        format: bulkhead::plan::GraphFormat,
    },
    /// Measure per-task overhead, throughput and plugin load times (uses the `noop` plugin).
    Bench(cli::bench::BenchArgs),
    /// Print the JSON Schema of the workflow format.
    Schema,
    /// List the plugins of the plugin folder: name, size, content hash, whether it loads, ABI.
    Plugins {
        #[command(flatten)]
        plugins: cli::PluginsArg,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.command {
        Command::Run(run) => cli::run::main(run, args.log_format, args.cache_dir),
        Command::Validate { files, plugins } => {
            bulkhead::telemetry::init(args.log_format, "warn");
            cli::validate(&files, &plugins, args.cache_dir)
        }
        Command::Bench(bench) => cli::bench::main(bench, args.cache_dir),
        Command::Schema => {
            print!("{}", bulkhead::workflow::json_schema());
            ExitCode::SUCCESS
        }
        Command::Graph { file, format } => cli::graph(&file, format),
        Command::Plugins { plugins, json } => {
            bulkhead::telemetry::init(args.log_format, "warn");
            cli::plugins(&plugins, args.cache_dir, json)
        }
    }
}

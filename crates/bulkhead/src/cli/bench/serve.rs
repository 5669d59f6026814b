//! `bulkhead serve` under HTTP load, as a user runs it: a real server process with the SQLite
//! store, clients on keep-alive connections triggering runs through `POST /api/runs` as fast as
//! it answers. Reports sustained runs per second (first trigger to last run ended, read from
//! `/metrics`), the trigger-to-first-attempt latency of every run (the client's send time
//! against the attempt's start in the store), and checks that every triggered run ran exactly
//! once and succeeded. Then the API with a long history: list, filter and page through 100,000
//! runs.

use super::{percentile, tempfile_dir};
use bulkhead::sandbox::compile::CompileBounds;
use bulkhead::store::{NewTrigger, RunCaps, RunStatus, Store, TriggerKind};
use bulkhead::SqliteStore;
use bulkhead::{Host, HostConfig};
use serde_json::json;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A 1-task workflow, a 10-task one (a fan-out of eight between two), and one whose task fails
/// (history for the filters).
const WORKFLOWS: &[(&str, &str)] = &[
    ("one", "name: one\ntasks:\n  a: {plugin: noop}\n"),
    (
        "ten",
        "name: ten\ntasks:\n  first: {plugin: noop}\n  m0: {plugin: noop, needs: [first]}\n  m1: {plugin: noop, needs: [first]}\n  m2: {plugin: noop, needs: [first]}\n  m3: {plugin: noop, needs: [first]}\n  m4: {plugin: noop, needs: [first]}\n  m5: {plugin: noop, needs: [first]}\n  m6: {plugin: noop, needs: [first]}\n  m7: {plugin: noop, needs: [first]}\n  last: {plugin: noop, needs: [m0, m1, m2, m3, m4, m5, m6, m7]}\n",
    ),
];

/// A running `bulkhead serve`; killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// A server on `site`'s workflows and plugins (see [`site`]).
    fn start(cache_dir: &Path, site: &Path, db: &std::ffi::OsStr) -> Result<Server, String> {
        let mut child = Command::new(
            std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?,
        )
        .args(["serve", "--listen", "127.0.0.1:0", "--workflows"])
        .arg(site.join("workflows"))
        .arg("--plugins")
        .arg(site.join("plugins"))
        .arg("--cache-dir")
        .arg(cache_dir)
        .arg("--store")
        .arg(db)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start bulkhead serve: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr of bulkhead serve")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stderr).lines();
            let mut sent = false;
            // Keep reading to the end so the server never blocks on a full pipe.
            for line in lines.by_ref().map_while(Result::ok) {
                if !sent {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        let _ = tx.send(addr.to_string());
                        sent = true;
                    }
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "bulkhead serve did not start listening within 60 s".to_string())?;
        Ok(Server { child, base })
    }

    /// SIGTERM, then wait for the process to end.
    fn stop(mut self) -> Result<(), String> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .map_err(|e| format!("cannot stop bulkhead serve: {e}"))?;
        self.child
            .wait()
            .map_err(|e| format!("waiting for bulkhead serve: {e}"))?;
        Ok(())
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `POST /api/runs` of `workflow`: the run id.
fn trigger(agent: &ureq::Agent, base: &str, workflow: &str) -> Result<String, String> {
    let mut resp = agent
        .post(&format!("{base}/api/runs"))
        .content_type("application/json")
        .send(json!({ "workflow": workflow }).to_string())
        .map_err(|e| format!("POST /api/runs: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    if status != 201 {
        return Err(format!("POST /api/runs answered {status}: {body}"));
    }
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    v["run_id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("POST /api/runs gave no run id: {body}"))
}

/// The body of `GET path`, which must answer 200.
fn get(agent: &ureq::Agent, base: &str, path: &str) -> Result<String, String> {
    let mut resp = agent
        .get(&format!("{base}{path}"))
        .call()
        .map_err(|e| format!("GET {path}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("GET {path}: {e}"))?;
    match status {
        200 => Ok(body),
        _ => Err(format!("GET {path} answered {status}: {body}")),
    }
}

/// A fresh folder with `workflows/<name>.yaml` for each of `workflows`, and `plugins/` holding
/// a copy of each plugin of `plugins` that they name, and nothing else: a server loads its whole
/// plugin folder before it listens, and the user's folder may hold large components (a Python
/// one compiles for tens of seconds) that no benchmark workflow uses.
fn site(plugins: &Path, workflows: &[(&str, &str)]) -> Result<std::path::PathBuf, String> {
    let site = tempfile_dir()?;
    let folder = site.join("workflows");
    std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    let mut named = std::collections::BTreeSet::new();
    for (name, yaml) in workflows {
        let file = folder.join(format!("{name}.yaml"));
        std::fs::write(&file, yaml).map_err(|e| format!("{}: {e}", file.display()))?;
        let wf = bulkhead::workflow::parse(yaml, &file).map_err(|e| e.to_string())?;
        named.extend(wf.tasks.iter().filter_map(|t| match &t.plugin {
            bulkhead::workflow::PluginRef::Name(n) => Some(n.clone()),
            bulkhead::workflow::PluginRef::Path(_) => None,
        }));
    }
    let own = site.join("plugins");
    std::fs::create_dir_all(&own).map_err(|e| format!("{}: {e}", own.display()))?;
    for plugin in named {
        let from = plugins.join(format!("{plugin}.wasm"));
        std::fs::copy(&from, own.join(format!("{plugin}.wasm")))
            .map_err(|e| format!("{}: {e} (run scripts/build-plugins.sh)", from.display()))?;
    }
    Ok(site)
}

/// Runs of `workflow` ended so far, by `/metrics` (`bulkhead_runs_total`).
fn ended(agent: &ureq::Agent, base: &str, workflow: &str) -> Result<f64, String> {
    let text = get(agent, base, "/metrics")?;
    let label = format!("workflow=\"{workflow}\"");
    Ok(text
        .lines()
        .filter(|l| l.starts_with("bulkhead_runs_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// Waits until `count` runs of `workflow` have ended on the servers at `bases` together,
/// polling every 20 ms, for at most `within`.
fn wait_ended(
    agent: &ureq::Agent,
    bases: &[String],
    workflow: &str,
    count: usize,
    within: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let mut n = 0.0;
        for base in bases {
            n += ended(agent, base, workflow)?;
        }
        if n >= count as f64 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "only {n} of {count} runs of `{workflow}` ended within {within:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// CPU time the servers have used so far, in seconds (user and system, every thread), from
/// /proc; `None` where there is none. The clients share the machine, so a run's rate on two
/// cores moves with them; a run's CPU time in the server does not, and is what a change to
/// the server moves.
fn servers_cpu(servers: &[Server]) -> Option<f64> {
    servers.iter().map(|s| cpu_seconds(s.child.id())).sum()
}

/// CPU time of the process `pid` so far, in seconds, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> Option<f64> {
    cpu_of_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The CPU seconds in a `/proc/PID/stat` line.
fn cpu_of_stat(stat: &str) -> Option<f64> {
    // The name (field 2) is in parentheses and may hold spaces: count the fields after it,
    // where field 3 is the first; utime and stime are fields 14 and 15.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // In clock ticks of USER_HZ, which Linux reports at 100 a second on every architecture.
    Some((utime + stime) as f64 / 100.0)
}

/// Where the servers of a load keep their runs.
#[derive(Debug, Clone, Copy)]
pub(super) enum Backend<'a> {
    /// One server, a SQLite file.
    Sqlite,
    /// `hosts` servers on one new database of the PostgreSQL server at `server`.
    Postgres {
        /// A URL of the server (any database the user may connect to).
        server: &'a str,
        /// Servers sharing the database.
        hosts: usize,
    },
}

/// One load: `runs` triggers of `workflow` from `clients` threads (spread over the servers);
/// runs/s, latencies, checks.
async fn load(
    plugins: &Path,
    cache_dir: &Path,
    workflow: &str,
    runs: usize,
    clients: usize,
    backend: Backend<'_>,
) -> Result<serde_json::Value, String> {
    let site = site(plugins, WORKFLOWS)?;
    let database = match backend {
        Backend::Sqlite => None,
        Backend::Postgres { server, .. } => {
            let name = format!("bulkhead_bench_{}", uuid::Uuid::now_v7().simple());
            let url = bulkhead::store_postgres::create_database(server, &name)
                .await
                .map_err(|e| e.to_string())?;
            Some((server, name, url))
        }
    };
    let result = async {
        let db = site.join("state.db");
        let (store_arg, hosts): (std::ffi::OsString, usize) = match (&database, backend) {
            (Some((_, _, url)), Backend::Postgres { hosts, .. }) => (url.into(), hosts.max(1)),
            _ => (db.clone().into(), 1),
        };
        let servers = (0..hosts)
            .map(|_| Server::start(cache_dir, &site, &store_arg))
            .collect::<Result<Vec<_>, _>>()?;
        let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
        let base = bases[0].clone();
        let probe = agent();
        // Warm-up: compile caches, connections, SQLite pages.
        let warm = 20;
        for _ in 0..warm {
            trigger(&probe, &base, workflow)?;
        }
        wait_ended(&probe, &bases, workflow, warm, Duration::from_secs(60))?;

        let cpu_before = servers_cpu(&servers);
        let started = Instant::now();
        let per_client = runs.div_ceil(clients);
        let sent: Vec<(String, i64)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..clients)
                .map(|c| {
                    let base = &bases[c % bases.len()];
                    s.spawn(move || {
                        let agent = agent();
                        let mine = per_client.min(runs.saturating_sub(c * per_client));
                        let mut sent = Vec::with_capacity(mine);
                        for _ in 0..mine {
                            let at = now_ms();
                            sent.push((trigger(&agent, base, workflow)?, at));
                        }
                        Ok::<_, String>(sent)
                    })
                })
                .collect();
            let mut all = Vec::new();
            for h in handles {
                all.extend(
                    h.join()
                        .map_err(|_| "a client thread panicked".to_string())??,
                );
            }
            Ok::<_, String>(all)
        })?;
        let accepted = started.elapsed();
        wait_ended(
            &probe,
            &bases,
            workflow,
            warm + runs,
            Duration::from_secs(300),
        )?;
        let took = started.elapsed();
        let cpu = servers_cpu(&servers)
            .zip(cpu_before)
            .map(|(after, before)| (after - before) * 1000.0 / runs as f64);
        for server in servers {
            server.stop()?;
        }

        // Every run once, succeeded, each task attempted once; latency to its first attempt.
        let store: Arc<dyn Store> = match &database {
            Some((_, _, url)) => Arc::new(
                bulkhead::PostgresStore::connect(url)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            None => Arc::new(SqliteStore::open(&db).map_err(|e| e.to_string())?),
        };
        let mut latency = Vec::with_capacity(sent.len());
        let mut ids = std::collections::HashSet::new();
        for (run_id, at) in &sent {
            if !ids.insert(run_id.as_str()) {
                return Err(format!("run id {run_id} was given twice"));
            }
            let run = store
                .load(run_id)
                .await
                .map_err(|e| format!("run {run_id}: {e}"))?;
            if run.status != RunStatus::Succeeded {
                return Err(format!("run {run_id} is {:?}, not succeeded", run.status));
            }
            if let Some(t) = run.tasks.iter().find(|t| t.attempts != 1) {
                return Err(format!(
                    "run {run_id}: task {} ran {} times",
                    t.task, t.attempts
                ));
            }
            let first = run.attempts.iter().map(|a| a.started_at).min();
            let first = first.ok_or_else(|| format!("run {run_id} has no attempt"))?;
            latency.push((first - at).max(0) as f64);
        }
        latency.sort_by(f64::total_cmp);
        let rate = runs as f64 / took.as_secs_f64();
        let accept = runs as f64 / accepted.as_secs_f64();
        let tasks = WORKFLOWS
            .iter()
            .find(|(n, _)| *n == workflow)
            .map_or(1, |(_, y)| y.matches("plugin:").count());
        Ok(json!({
            "workflow": workflow,
            "store": match backend { Backend::Sqlite => "sqlite", Backend::Postgres { .. } => "postgres" },
            "hosts": hosts,
            "tasks_per_run": tasks,
            "runs": runs,
            "clients": clients,
            "runs_per_s": rate,
            "tasks_per_s": rate * tasks as f64,
            "triggers_accepted_per_s": accept,
            "server_cpu_ms_per_run": cpu,
            "trigger_to_first_attempt_ms": {
                "p50": percentile(&latency, 0.5),
                "p99": percentile(&latency, 0.99),
                "max": latency.last().copied().unwrap_or(f64::NAN),
            },
        }))
    }
    .await;
    let _ = std::fs::remove_dir_all(&site);
    if let Some((server, name, _)) = &database {
        if let Err(e) = bulkhead::store_postgres::drop_database(server, name).await {
            eprintln!("warning: cannot drop the benchmark's database {name}: {e}");
        }
    }
    result
}

/// Sustained runs per second of the 1-task and the 10-task workflow, `repeat` loads each
/// (the median load by runs/s is reported).
pub(super) async fn throughput(
    plugins: &Path,
    cache_dir: &Path,
    runs: usize,
    clients: usize,
    repeat: usize,
) -> Result<Vec<serde_json::Value>, String> {
    if runs == 0 {
        return Ok(Vec::new());
    }
    eprintln!("serve, {runs} runs triggered by {clients} HTTP clients (POST /api/runs), SQLite store, every run checked in the store afterwards:");
    let mut out = Vec::new();
    for workflow in ["one", "ten"] {
        let mut loads = Vec::new();
        for _ in 0..repeat {
            loads.push(load(plugins, cache_dir, workflow, runs, clients, Backend::Sqlite).await?);
        }
        // The median load by runs/s (the middle one, as `median` picks).
        let rate = |l: &serde_json::Value| l["runs_per_s"].as_f64().unwrap_or(f64::NAN);
        loads.sort_by(|a, b| rate(a).total_cmp(&rate(b)));
        let chosen = loads.swap_remove(loads.len() / 2);
        let mid = rate(&chosen);
        eprintln!(
            "  {:>2}-task workflow: {:>6.0} runs/s ({:.0} tasks/s; triggers accepted at {:.0}/s), trigger -> first attempt p50 {:.0} ms, p99 {:.0} ms, server CPU {:.3} ms a run",
            chosen["tasks_per_run"].as_u64().unwrap_or(0),
            mid,
            chosen["tasks_per_s"].as_f64().unwrap_or(f64::NAN),
            chosen["triggers_accepted_per_s"].as_f64().unwrap_or(f64::NAN),
            chosen["trigger_to_first_attempt_ms"]["p50"].as_f64().unwrap_or(f64::NAN),
            chosen["trigger_to_first_attempt_ms"]["p99"].as_f64().unwrap_or(f64::NAN),
            chosen["server_cpu_ms_per_run"].as_f64().unwrap_or(f64::NAN),
        );
        out.push(chosen);
    }
    Ok(out)
}

/// Seeds a database with `runs` finished runs (one in ten of a failing workflow), by running
/// them in memory eight at a time and copying the result to a file.
async fn seed(
    plugins: &Path,
    cache_dir: &Path,
    site: &Path,
    runs: usize,
) -> Result<std::path::PathBuf, String> {
    let memory = Arc::new(SqliteStore::open_in_memory().map_err(|e| e.to_string())?);
    let host = Host::new(HostConfig {
        plugins_dir: plugins.to_path_buf(),
        cache_dir: Some(cache_dir.to_path_buf()),
        max_parallel: 64,
        store: Some(memory.clone()),
        plugin_vault: Some(Arc::new(bulkhead::FolderVault::new(site.join("vault")))),
        guarded: Vec::new(),
        compile: CompileBounds::default(),
        compiler: super::super::compiler(),
    })
    .map_err(|e| e.to_string())?;
    let mut loaded = Vec::new();
    for (name, yaml) in HISTORY {
        let file = site.join("workflows").join(format!("{name}.yaml"));
        let wf = bulkhead::workflow::parse(yaml, &file).map_err(|e| e.to_string())?;
        loaded.push(Arc::new(
            host.prepare(wf, yaml.to_string())
                .map_err(|e| e.to_string())?,
        ));
    }
    let host = Arc::new(host);
    let mut running = tokio::task::JoinSet::new();
    for i in 0..runs {
        if running.len() >= 8 {
            if let Some(done) = running.join_next().await {
                done.map_err(|e| e.to_string())??;
            }
        }
        let (host, which) = (host.clone(), usize::from(i % 10 == 9));
        let loaded = loaded[which].clone();
        // Each run as the API starts one: a trigger, claimed, then the run with its id (which
        // closes the trigger). A history of triggered runs is what a server accumulates.
        let run_id = bulkhead::new_run_id();
        let now = bulkhead::store::now_ms();
        memory
            .add_trigger(NewTrigger {
                kind: TriggerKind::Once,
                workflow: HISTORY[which].0.to_string(),
                params: json!({}),
                due_at: now,
                created_at: now,
                run_id: run_id.clone(),
            })
            .await
            .map_err(|e| e.to_string())?;
        let claimed = memory
            .claim_due(now, 1, &RunCaps::new())
            .await
            .map_err(|e| e.to_string())?;
        if claimed.first().map(|t| &t.run_id) != Some(&run_id) {
            return Err(format!(
                "seeding the history: trigger of run {run_id} was not claimed"
            ));
        }
        running.spawn(async move {
            host.run(
                &loaded,
                run_id,
                json!({}),
                &super::Quiet,
                Default::default(),
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
        });
    }
    while let Some(done) = running.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    let db = site.join("history.db");
    memory.copy_to(&db).map_err(|e| e.to_string())?;
    Ok(db)
}

/// The workflows of the history: `one` succeeds, `bad` fails (its plugin panics).
const HISTORY: &[(&str, &str)] = &[
    ("one", "name: one\ntasks:\n  a: {plugin: noop}\n"),
    (
        "bad",
        "name: bad\ntasks:\n  a: {plugin: chaos, params: {mode: panic}}\n",
    ),
];

/// Latencies in ms of `count` GETs of `path` (p50, p99), each answered 200.
fn timed(agent: &ureq::Agent, base: &str, path: &str, count: usize) -> Result<(f64, f64), String> {
    let mut ms = Vec::with_capacity(count);
    for _ in 0..count {
        let t = Instant::now();
        get(agent, base, path)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    Ok((percentile(&ms, 0.5), percentile(&ms, 0.99)))
}

/// The API over a history of `runs` finished runs: the first page, filters, and paging deep
/// with the cursor, each timed from a client.
pub(super) async fn history(
    plugins: &Path,
    cache_dir: &Path,
    runs: usize,
) -> Result<serde_json::Value, String> {
    if runs == 0 {
        return Ok(serde_json::Value::Null);
    }
    let site = site(plugins, HISTORY)?;
    let result = async {
        let seeded = Instant::now();
        let db = seed(plugins, cache_dir, &site, runs).await?;
        let seeded = seeded.elapsed();
        let server = Server::start(cache_dir, &site, db.as_os_str())?;
        let agent = agent();
        let base = server.base.clone();
        let mut out = json!({"runs": runs, "seed_seconds": seeded.as_secs_f64()});
        let mut line = format!("API with {runs} runs in history (p50 / p99 of 20 GETs):");
        for (name, path) in [
            ("first_page", "/api/runs?limit=50"),
            ("by_workflow", "/api/runs?workflow=bad&limit=50"),
            ("by_status", "/api/runs?status=failed&limit=50"),
            ("both", "/api/runs?workflow=one&status=succeeded&limit=50"),
        ] {
            let (p50, p99) = timed(&agent, &base, path, 20)?;
            out[name] = json!({"p50_ms": p50, "p99_ms": p99});
            line.push_str(&format!(" {name} {p50:.1} / {p99:.1} ms;"));
        }
        // Page to the end, 500 at a time, following the cursor: every run once.
        let (mut cursor, mut seen, mut pages, mut ms) =
            (None::<String>, 0usize, 0usize, Vec::new());
        loop {
            let path = match &cursor {
                None => "/api/runs?limit=500".to_string(),
                Some(c) => format!("/api/runs?limit=500&cursor={c}"),
            };
            let t = Instant::now();
            let body = get(&agent, &base, &path)?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            let page: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
            seen += page["runs"].as_array().map_or(0, Vec::len);
            pages += 1;
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        server.stop()?;
        if seen != runs {
            return Err(format!(
                "paging through the history gave {seen} runs of {runs}"
            ));
        }
        ms.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&ms, 0.5), percentile(&ms, 0.99));
        out["paging"] = json!({"pages": pages, "page_size": 500, "p50_ms": p50, "p99_ms": p99});
        line.push_str(&format!(
            " every page of 500 to the end ({pages} pages) {p50:.1} / {p99:.1} ms"
        ));
        eprintln!("{line}");
        Ok(out)
    }
    .await;
    let _ = std::fs::remove_dir_all(&site);
    result
}

/// The same 10-task load on SQLite (one host) and on one PostgreSQL database with 1, 2 and 3
/// hosts, side by side: runs/s, tasks/s, trigger -> first attempt (the claim) p50/p99, and the
/// coordination overhead per task against SQLite (on two cores the hosts share the CPU, so more
/// hosts are no speed-up here; the overhead is the figure).
pub(super) async fn cluster(
    plugins: &Path,
    cache_dir: &Path,
    server: Option<&str>,
    runs: usize,
    clients: usize,
) -> Result<Vec<serde_json::Value>, String> {
    let Some(server) = server else {
        eprintln!("PostgreSQL hosts: skipped (pass --postgres postgres://USER@HOST:PORT/DB)");
        return Ok(Vec::new());
    };
    if runs == 0 {
        return Ok(Vec::new());
    }
    eprintln!("PostgreSQL hosts, {runs} runs of the 10-task workflow from {clients} HTTP clients spread over the hosts:");
    let mut out = Vec::new();
    let backends = [
        Backend::Sqlite,
        Backend::Postgres { server, hosts: 1 },
        Backend::Postgres { server, hosts: 2 },
        Backend::Postgres { server, hosts: 3 },
    ];
    let mut sqlite_task_us = f64::NAN;
    for backend in backends {
        let l = load(plugins, cache_dir, "ten", runs, clients, backend).await?;
        let tasks_per_s = l["tasks_per_s"].as_f64().unwrap_or(f64::NAN);
        let task_us = 1e6 / tasks_per_s;
        if matches!(backend, Backend::Sqlite) {
            sqlite_task_us = task_us;
        }
        let overhead = task_us - sqlite_task_us;
        eprintln!(
            "  {:<8} {} host(s): {:>6.0} runs/s, {:>7.0} tasks/s, trigger -> first attempt p50 {:.0} ms, p99 {:.0} ms, {:+.0} us per task against SQLite",
            l["store"].as_str().unwrap_or(""),
            l["hosts"],
            l["runs_per_s"].as_f64().unwrap_or(f64::NAN),
            tasks_per_s,
            l["trigger_to_first_attempt_ms"]["p50"].as_f64().unwrap_or(f64::NAN),
            l["trigger_to_first_attempt_ms"]["p99"].as_f64().unwrap_or(f64::NAN),
            overhead,
        );
        let mut l = l;
        l["overhead_us_per_task_vs_sqlite"] = json!(overhead);
        out.push(l);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_a_name_holding_spaces_and_parentheses() {
        // pid (name) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime ...
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1";
        assert_eq!(cpu_of_stat(line), Some(3.25));
        assert_eq!(cpu_of_stat("42 (cut) S 1 2"), None, "a line cut short");
        assert_eq!(cpu_of_stat("no name at all"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn cpu_time_of_this_process_grows_with_its_work() {
        let me = std::process::id();
        let before = cpu_seconds(me).expect("Linux has /proc/PID/stat");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut spin = 0u64;
        // Work until the kernel has counted two more ticks of this process's time.
        while cpu_seconds(me).expect("still readable") < before + 0.02 {
            for i in 0..100_000u64 {
                spin = std::hint::black_box(spin.wrapping_mul(31).wrapping_add(i));
            }
            assert!(
                Instant::now() < deadline,
                "no CPU time counted in 10 s of work"
            );
        }
    }
}

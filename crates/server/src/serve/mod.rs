//! `bulkhead serve`: a long-running host. It keeps the workflow and plugin folders loaded (and
//! watched), fires cron schedules and stored triggers, runs them, resumes interrupted runs on
//! start, and serves the HTTP API (`api`). One process, no other infrastructure.

mod catalog;
pub mod live;

pub use catalog::{Catalog, FileStatus, PluginStatus};
pub use live::{Live, LiveEvent, LiveObserver};

use crate::metrics::{Metrics, MetricsObserver};
use bulkhead_core::exec::{LogObserver, Stop};
use bulkhead_core::store::{NewTrigger, RunCaps, Store, StoreError, TriggerKind};
use bulkhead_core::trigger::Clock;
use bulkhead_host::{Host, HostError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// How often the scheduler looks for due triggers when nothing wakes it.
pub const TICK: Duration = Duration::from_millis(250);

/// The most triggers one claim takes.
pub const CLAIM_BATCH: usize = 256;

/// How often `serve` looks for runs whose lease expired (their host died) to adopt them. A
/// fraction of the lease's length, so such a run waits at most about a lease and this long.
pub const REAP: Duration = Duration::from_secs(10);

/// How often the folders are rescanned even without file events.
pub const RESCAN: Duration = Duration::from_secs(5);

/// A serving host.
pub struct Server {
    /// The host (sandbox, store, plugin folder).
    pub host: Arc<Host>,
    /// The store (the host's).
    pub store: Arc<dyn Store>,
    /// The active definitions.
    pub catalog: RwLock<Catalog>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Now.
    pub clock: Arc<dyn Clock>,
    /// The workflow folder.
    pub workflows_dir: PathBuf,
    /// Stops runs (graceful, with the grace period) on shutdown.
    pub stop: Stop,
    /// Live events of the runs on this host, for `/api/events`.
    pub live: Live,
    wake: Notify,
    /// A reload is running (on the blocking pool); at most one at a time.
    reloading: std::sync::atomic::AtomicBool,
    /// Something changed since the running reload started: run one more after it.
    reload_again: std::sync::atomic::AtomicBool,
    considered: Mutex<HashMap<String, i64>>,
    runs: Mutex<JoinSet<()>>,
    /// Runs set going here (run, resume, retry) that have not ended: counted from the moment
    /// they are spawned, so a claim right after another never takes the same room twice.
    held: std::sync::atomic::AtomicUsize,
    /// The last claim may have left due triggers behind: it took as many as it had room for,
    /// or a workflow's `max_active_runs` may have held some back. Then a run's end wakes the
    /// claim loop; otherwise it does not (an empty claim is a write), and triggers that come
    /// wake it themselves.
    backlog: std::sync::atomic::AtomicBool,
}

/// Counts a run in [`Server::held`] until dropped, then wakes the claim loop if triggers may
/// be waiting: the run's slots are free for them.
struct Held(Arc<Server>);

impl Drop for Held {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.0.held.fetch_sub(1, SeqCst);
        if self.0.backlog.load(SeqCst) {
            self.0.wake.notify_one();
        }
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("workflows_dir", &self.workflows_dir)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server over `host`, which must have a store.
    pub fn new(
        host: Host,
        workflows_dir: PathBuf,
        clock: Arc<dyn Clock>,
        grace: Duration,
    ) -> Result<Arc<Server>, HostError> {
        let mut host = host;
        // The API shows a running attempt's log as it is written.
        host.keep_live_logs();
        let store = host
            .store()
            .cloned()
            .ok_or_else(|| HostError::State("serve needs a state store".into()))?;
        let server = Arc::new(Server {
            host: Arc::new(host),
            store,
            catalog: RwLock::new(Catalog::default()),
            metrics: Arc::new(Metrics::new()),
            clock,
            workflows_dir,
            stop: Stop {
                grace,
                ..Stop::default()
            },
            live: Live::default(),
            wake: Notify::new(),
            reloading: std::sync::atomic::AtomicBool::new(false),
            reload_again: std::sync::atomic::AtomicBool::new(false),
            considered: Mutex::new(HashMap::new()),
            runs: Mutex::new(JoinSet::new()),
            held: std::sync::atomic::AtomicUsize::new(0),
            backlog: std::sync::atomic::AtomicBool::new(false),
        });
        server.reload();
        Ok(server)
    }

    /// Rescans both folders (blocking: file reads and compiles; see [`Server::request_reload`]).
    pub fn reload(&self) {
        self.metrics.reloads.inc();
        let mut next = self
            .catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if next.refresh(&self.host, &self.workflows_dir, &self.metrics) {
            *self.catalog.write().unwrap_or_else(|e| e.into_inner()) = next;
            self.wake.notify_one();
        }
    }

    /// Asks for a reload without waiting for it. Requests coalesce: at most one reload runs at
    /// a time, off the async workers, and requests made while it runs cause exactly one more.
    pub fn request_reload(self: &Arc<Self>) {
        use std::sync::atomic::Ordering::SeqCst;
        self.reload_again.store(true, SeqCst);
        if self.reloading.swap(true, SeqCst) {
            return;
        }
        let server = self.clone();
        tokio::task::spawn_blocking(move || loop {
            while server.reload_again.swap(false, SeqCst) {
                server.reload();
            }
            server.reloading.store(false, SeqCst);
            // A request that came after the last check but before the flag was cleared.
            if !server.reload_again.load(SeqCst) || server.reloading.swap(true, SeqCst) {
                break;
            }
        });
    }

    /// The active version of a workflow.
    pub fn workflow(&self, name: &str) -> Option<Arc<bulkhead_host::Loaded>> {
        self.catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .workflows
            .get(name)
            .cloned()
    }

    /// Records a one-off run of `workflow` due at `due_at` (now if `None`); returns its run id.
    pub async fn trigger(
        &self,
        workflow: &str,
        params: serde_json::Value,
        due_at: Option<i64>,
    ) -> Result<String, StoreError> {
        let now = self.clock.now_ms();
        let run_id = bulkhead_core::new_run_id();
        self.store
            .add_trigger(NewTrigger {
                kind: TriggerKind::Once,
                workflow: workflow.to_string(),
                params,
                due_at: due_at.unwrap_or(now),
                created_at: now,
                run_id: run_id.clone(),
            })
            .await?;
        self.metrics.triggers.inc();
        self.wake.notify_one();
        let mut event = LiveEvent::new("run_triggered", &run_id, now);
        event.workflow = Some(workflow.to_string());
        self.live.send(event);
        Ok(run_id)
    }

    /// Starts the background work: resume interrupted runs, watch the folders, fire triggers.
    /// Returns when `shutdown` fires and every run has stopped (within the grace period).
    pub async fn run(self: &Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        self.adopt_unfinished("resuming an interrupted run").await;
        let _watcher = self.watch();
        let mut rescan = tokio::time::interval(RESCAN);
        let mut reap = tokio::time::interval(REAP);
        reap.tick().await; // The first tick is now: done just above.
        let started_at = self.clock.now_ms();
        let mut beat = tokio::time::interval(std::time::Duration::from_millis(
            bulkhead_core::store::HEARTBEAT_MS as u64,
        ));
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Err(e) = self.fire_due().await {
                tracing::error!(error = %e, "cannot fire triggers");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(TICK) => {}
                _ = rescan.tick() => self.request_reload(),
                _ = reap.tick() => self.adopt_unfinished("adopting a run whose host stopped renewing its lease").await,
                _ = beat.tick() => {
                    let beat = self.host.beat(started_at, self.clock.now_ms());
                    if let Err(e) = self.store.heartbeat(&beat).await {
                        tracing::warn!(error = %e, "cannot record this host's heartbeat");
                    }
                }
            }
        }
        tracing::info!(grace = ?self.stop.grace, "stopping: no new runs; running attempts may finish");
        self.stop.drain.cancel();
        let mut runs = std::mem::take(&mut *self.runs.lock().unwrap_or_else(|e| e.into_inner()));
        while runs.join_next().await.is_some() {}
    }

    /// Sets `bulkhead_last_success_timestamp_seconds` of every loaded workflow from the store,
    /// so that a restart does not hide how long a workflow has gone without success. Call it
    /// before serving `/metrics`.
    pub async fn restore_last_success(&self) {
        let names: Vec<String> = {
            let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
            catalog.workflows.keys().cloned().collect()
        };
        for name in names {
            let filter = bulkhead_core::store::RunFilter {
                workflow: Some(name.clone()),
                status: Some(bulkhead_core::store::RunStatus::Succeeded),
                limit: 1,
                before: None,
            };
            match self.store.list(&filter).await {
                Ok(runs) => {
                    let at = runs
                        .first()
                        .and_then(|r| r.finished_at.as_deref())
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
                    if let Some(at) = at {
                        self.metrics
                            .last_success
                            .get_or_create(&crate::metrics::WorkflowLabel { workflow: name })
                            .set(at.timestamp_millis() as f64 / 1000.0);
                    }
                }
                Err(e) => {
                    tracing::warn!(workflow = %name, error = %e, "cannot read the last successful run")
                }
            }
        }
    }

    /// How many more runs this host takes on now ([`Host::room`], with the runs set going here).
    fn room(&self) -> usize {
        self.host
            .room(self.held.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Records due cron fires, then claims due triggers and starts their runs.
    async fn fire_due(self: &Arc<Self>) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let scheduled: Vec<(String, bulkhead_core::trigger::Schedule)> = {
            let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
            catalog
                .workflows
                .iter()
                .filter_map(|(n, l)| l.workflow.schedule.clone().map(|s| (n.clone(), s)))
                .collect()
        };
        for (name, schedule) in scheduled {
            let known = self
                .considered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&name)
                .copied();
            let last = match known {
                Some(t) => Some(t),
                None => self.store.last_cron_fire(&name).await?,
            };
            for due_at in schedule.due(last, now) {
                let added = self
                    .store
                    .add_trigger(NewTrigger {
                        kind: TriggerKind::Cron,
                        workflow: name.clone(),
                        params: serde_json::json!({}),
                        due_at,
                        created_at: now,
                        run_id: bulkhead_core::new_run_id(),
                    })
                    .await?;
                if added {
                    self.metrics.triggers.inc();
                    tracing::info!(workflow = %name, scheduled = %bulkhead_core::store::rfc3339(due_at), "schedule fired");
                }
            }
            let considered = last.map_or(now, |l| l.max(now));
            self.considered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name, considered);
        }
        // A host claims only what it has room for (free slots): the rest stay due for hosts
        // that have some, or for this one when a run ends (which wakes this loop).
        let room = self.room().min(CLAIM_BATCH);
        if room == 0 {
            self.backlog
                .store(true, std::sync::atomic::Ordering::SeqCst);
            return Ok(());
        }
        let caps: RunCaps = {
            let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
            catalog
                .workflows
                .iter()
                .filter_map(|(n, l)| l.workflow.max_active_runs.map(|c| (n.clone(), c)))
                .collect()
        };
        let claimed = self.store.claim_due(now, room, &caps).await?;
        self.backlog.store(
            claimed.len() >= room || !caps.is_empty(),
            std::sync::atomic::Ordering::SeqCst,
        );
        for t in claimed {
            let Some(loaded) = self.workflow(&t.workflow) else {
                let error = format!("no workflow named `{}` is loaded", t.workflow);
                tracing::error!(run_id = %t.run_id, %error, "trigger cannot start");
                self.store.fail_trigger(&t.key, &error).await?;
                continue;
            };
            if t.kind == TriggerKind::Cron {
                // Only scheduled fires: a client's `at` says nothing about the scheduler.
                self.metrics
                    .schedule_lag
                    .observe((now - t.due_at).max(0) as f64 / 1000.0);
            }
            self.spawn_run(loaded, t.run_id, t.params);
        }
        Ok(())
    }

    fn spawn_run(
        self: &Arc<Self>,
        loaded: Arc<bulkhead_host::Loaded>,
        run_id: String,
        params: serde_json::Value,
    ) {
        let server = self.clone();
        self.spawn(async move {
            let metrics = MetricsObserver::new(server.metrics.clone(), &LogObserver);
            let name = loaded.workflow.name.clone();
            let observer = server.observer(&run_id, Some(&name), &metrics);
            let result = server
                .host
                .run(
                    &loaded,
                    run_id.clone(),
                    params,
                    &observer,
                    server.stop.for_run(),
                )
                .await;
            drop(observer);
            server.finished(&run_id, Some(&name), result);
        });
    }

    /// Live events of the run `run_id` on top of `inner`.
    fn observer<'a>(
        &self,
        run_id: &str,
        workflow: Option<&str>,
        inner: &'a dyn bulkhead_core::exec::Observer,
    ) -> LiveObserver<'a> {
        LiveObserver::new(
            self.live.clone(),
            run_id,
            workflow,
            self.clock.clone(),
            inner,
        )
    }

    /// Resumes unfinished runs whose lease is free (their host died or stopped) and that are
    /// not already running here, as many as this host has room for (oldest first; the rest are
    /// left to other hosts, or to the next round). At start, and every [`REAP`] after, so a
    /// run left by a dead host is taken over without restarting this one.
    async fn adopt_unfinished(self: &Arc<Self>, why: &'static str) {
        let room = self.room();
        match self.store.unfinished(self.clock.now_ms()).await {
            Ok(ids) => {
                let free = ids.into_iter().filter(|id| !self.host.is_active(id));
                for id in free.take(room) {
                    tracing::info!(run_id = %id, "{why}");
                    self.spawn_resume(id);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot list unfinished runs"),
        }
    }

    fn spawn_resume(self: &Arc<Self>, run_id: String) {
        let server = self.clone();
        self.spawn(async move {
            let metrics = MetricsObserver::new(server.metrics.clone(), &LogObserver);
            let observer = server.observer(&run_id, None, &metrics);
            let result = server
                .host
                .resume(&run_id, &observer, server.stop.for_run())
                .await;
            drop(observer);
            server.finished(&run_id, None, result);
        });
    }

    /// Runs `retry` of a task in the background.
    pub fn spawn_retry(self: &Arc<Self>, run_id: String, workflow: String, task: String) {
        let server = self.clone();
        self.spawn(async move {
            let metrics = MetricsObserver::new(server.metrics.clone(), &LogObserver);
            let observer = server.observer(&run_id, Some(&workflow), &metrics);
            let result = server
                .host
                .retry(&run_id, &task, &observer, server.stop.for_run())
                .await;
            drop(observer);
            server.finished(&run_id, Some(&workflow), result);
        });
    }

    fn spawn(self: &Arc<Self>, f: impl std::future::Future<Output = ()> + Send + 'static) {
        self.held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let held = Held(self.clone());
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        while runs.try_join_next().is_some() {}
        runs.spawn(async move {
            let _held = held;
            f.await;
        });
    }

    fn finished(
        &self,
        run_id: &str,
        workflow: Option<&str>,
        result: Result<bulkhead_core::report::RunReport, HostError>,
    ) {
        let mut event = LiveEvent::new("run_finished", run_id, self.clock.now_ms());
        match result {
            Ok(report) => {
                self.metrics.run_ended(&report);
                tracing::info!(run_id, status = report.status.as_str(), "run ended");
                event.workflow = Some(report.workflow.clone());
                event.status = Some(report.status.as_str().to_string());
            }
            Err(e) => {
                tracing::error!(run_id, error = %e, "run could not go on");
                event.workflow = workflow.map(str::to_string);
                event.message = Some(e.to_string());
            }
        }
        self.live.send(event);
    }

    /// Watches both folders; file events trigger a (debounced) reload.
    fn watch(self: &Arc<Self>) -> Option<notify::RecommendedWatcher> {
        use notify::Watcher;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // Only changes: reading a file (the server's own reloads do) is not one.
            let change = event.is_ok_and(|e| match e.kind {
                notify::EventKind::Modify(notify::event::ModifyKind::Metadata(_)) => false,
                notify::EventKind::Create(_)
                | notify::EventKind::Modify(_)
                | notify::EventKind::Remove(_) => true,
                _ => false,
            });
            if change {
                let _ = tx.send(());
            }
        })
        .map_err(|e| tracing::warn!(error = %e, "cannot watch folders; rescanning every few seconds instead"))
        .ok()?;
        for dir in [
            self.workflows_dir.clone(),
            self.host.registry().dir().to_path_buf(),
        ] {
            if let Err(e) = watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch folder; rescanning every few seconds instead");
            }
        }
        let server = Arc::downgrade(self);
        tokio::spawn(async move {
            while rx.recv().await.is_some() {
                // Let a burst of events (a copy in progress) settle, then reload once.
                tokio::time::sleep(Duration::from_millis(100)).await;
                while rx.try_recv().is_ok() {}
                let Some(server) = server.upgrade() else {
                    break;
                };
                server.request_reload();
            }
        });
        Some(watcher)
    }
}

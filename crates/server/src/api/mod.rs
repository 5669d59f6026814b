//! The HTTP API of `bulkhead serve` (docs/serve.md): JSON under `/api`, `/healthz`,
//! `/metrics` (Prometheus) and `/api/openapi.json`. Errors map to responses in one place
//! ([`ApiError`]) and never carry internal details.

use crate::serve::{FileStatus, PluginStatus, Server};
use bulkhead_core::report::RunReport;
use bulkhead_core::store::{RunFilter, RunStatus, RunSummary, StoreError};
mod dto;
mod error;
mod events;
mod graph;
mod guard;
mod listen;
mod ui;

pub use dto::*;
pub use error::{ApiError, ApiResult, ErrorBody};
pub use graph::{graph_of, Graph, GraphEdge, GraphTask};

pub use listen::{serve as serve_http, ListenLimits};

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bulkhead_core::store::CancelOutcome;
use serde::Serialize;
use std::sync::Arc;
use utoipa::OpenApi;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 << 10;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct Api {
    server: Arc<Server>,
    token: Option<Arc<str>>,
    /// Reads need the token too.
    token_for_reads: bool,
    /// The address the server listens on (no-token mode serves only requests for it).
    listen: std::net::SocketAddr,
    /// Reads that load a whole run (reports, logs) at once: they hold the run in memory, so
    /// only a few at a time; the rest wait their turn.
    heavy: Arc<tokio::sync::Semaphore>,
}

/// Reads that load a whole run, at once.
const HEAVY_READS: usize = 2;

/// Largest `task_limit` of `GET /api/runs/{run_id}`.
pub const MAX_TASK_PAGE: usize = 10_000;

/// Default `max_bytes` of a task's logs, per attempt: four times the default `max_logs`.
pub const DEFAULT_LOG_BYTES: usize = 4 << 20;
/// Largest `max_bytes` of a task's logs, per attempt.
pub const MAX_LOG_BYTES: usize = 64 << 20;

#[derive(OpenApi)]
#[openapi(
    info(title = "Bulkhead API", description = "Trigger, watch and remediate runs of sandboxed WebAssembly workflows."),
    paths(list_workflows, graph::workflow_graph, list_plugins, list_hosts, create_run, list_runs, get_run, graph::run_graph, task_logs, cancel_run, retry_task, events::events, events::run_events, healthz, metrics),
    components(schemas(ErrorBody, WorkflowInfo, WorkflowList, ParamInfo, RunBrief, Graph, GraphTask, GraphEdge, crate::serve::LiveEvent, FileStatus, PluginStatus, HostInfo, HostList, TriggerRequest, Triggered, RunPage, RunSummary, TaskLogs, AttemptLogBody, Accepted, RunReport)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // The listener's own answers (docs/serve.md, "Bounds") can come on every call.
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let refusal = |what: &str| {
            ResponseBuilder::new()
                .description(what)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                op.responses
                    .responses
                    .entry("429".into())
                    .or_insert_with(|| {
                        refusal("This client has as many connections open as one client may").into()
                    });
                op.responses
                    .responses
                    .entry("503".into())
                    .or_insert_with(|| {
                        refusal("The server has as many connections as it takes, or is stopping")
                            .into()
                    });
            }
        }
    }
}

/// The OpenAPI document.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

/// Who may call the API.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// The bearer token mutating calls need (none: loopback only, see `guard`).
    pub token: Option<String>,
    /// Whether reads need the token too (all but `/healthz` and the UI's files).
    pub token_for_reads: bool,
}

/// The router of a server listening on `listen` (the bound address).
pub fn router(server: Arc<Server>, access: Access, listen: std::net::SocketAddr) -> Router {
    let api = Api {
        server,
        token: access.token.map(Arc::from),
        token_for_reads: access.token_for_reads,
        listen,
        heavy: Arc::new(tokio::sync::Semaphore::new(HEAVY_READS)),
    };
    Router::new()
        .route("/", get(ui::ui))
        .route("/ui.js", get(ui::ui_js))
        .route("/ui.css", get(ui::ui_css))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route(
            "/api/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], openapi_json()) }),
        )
        .route("/api/workflows", get(list_workflows))
        .route("/api/workflows/{name}/graph", get(graph::workflow_graph))
        .route("/api/events", get(events::events))
        .route("/api/runs/{run_id}/events", get(events::run_events))
        .route("/api/runs/{run_id}/graph", get(graph::run_graph))
        .route("/api/plugins", get(list_plugins))
        .route("/api/hosts", get(list_hosts))
        .route("/api/runs", get(list_runs).post(create_run))
        .route("/api/runs/{run_id}", get(get_run))
        .route("/api/runs/{run_id}/tasks/{task}/logs", get(task_logs))
        .route("/api/runs/{run_id}/cancel", post(cancel_run))
        .route("/api/runs/{run_id}/tasks/{task}/retry", post(retry_task))
        .fallback(|| async { ApiError::not_found("no such endpoint (see /api/openapi.json)") })
        .layer(middleware::from_fn_with_state(
            api.clone(),
            guard::authorize,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(guard::json_errors))
        .with_state(api)
}

#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "The server is up", body = Object), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody)))]
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format 0.0.4, or OpenMetrics 1.0 when the Accept header asks for `application/openmetrics-text`", content((String = "text/plain"), (String = "application/openmetrics-text"))), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody)))]
async fn metrics(State(api): State<Api>, headers: HeaderMap) -> impl IntoResponse {
    match api.server.store.pending_triggers().await {
        Ok(n) => {
            api.server.metrics.pending_triggers.set(n as i64);
        }
        Err(e) => tracing::warn!(error = %e, "cannot count pending triggers for /metrics"),
    }
    let openmetrics = api.server.metrics.render();
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if crate::metrics::wants_openmetrics(accept) {
        (
            [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
            openmetrics,
        )
    } else {
        (
            [(header::CONTENT_TYPE, crate::metrics::TEXT_CONTENT_TYPE)],
            crate::metrics::to_text_format(&openmetrics),
        )
    }
}

#[utoipa::path(get, path = "/api/workflows", responses((status = 200, description = "Loaded workflows (with their parameters, next fires and latest runs) and broken workflow files", body = WorkflowList), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody), (status = 500, description = "The state store failed", body = ErrorBody)))]
async fn list_workflows(State(api): State<Api>) -> ApiResult<Json<WorkflowList>> {
    let now = api.server.clock.now_ms();
    let catalog = api
        .server
        .catalog
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let error_of = |name: &str| {
        catalog
            .files
            .values()
            .find(|f| f.workflow.as_deref() == Some(name))
            .and_then(|f| f.error.clone())
    };
    let mut workflows = Vec::with_capacity(catalog.workflows.len());
    for (name, l) in &catalog.workflows {
        let wf = &l.workflow;
        let s = wf.schedule.as_ref();
        let fires = s.map(|s| next_fires(s, now, 5)).unwrap_or_default();
        let recent = api
            .server
            .store
            .list(&RunFilter {
                workflow: Some(name.clone()),
                status: None,
                limit: RECENT_RUNS,
                before: None,
            })
            .await?;
        let ended: Vec<&RunSummary> = recent
            .iter()
            .filter(|r| {
                matches!(
                    r.status,
                    RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
                )
            })
            .collect();
        let success_rate = (!ended.is_empty()).then(|| {
            ended
                .iter()
                .filter(|r| r.status == RunStatus::Succeeded)
                .count() as f64
                / ended.len() as f64
        });
        workflows.push(WorkflowInfo {
            name: name.clone(),
            description: wf.description.clone(),
            file: wf.file.display().to_string(),
            hash: wf.hash.clone(),
            tasks: wf.tasks.len(),
            schedule: s.map(|s| s.expressions.clone()).unwrap_or_default(),
            timezone: s.map(|s| s.timezone.name().to_string()),
            catchup: s.map(|s| format!("{:?}", s.catchup).to_lowercase()),
            next_fire_at: fires.first().map(|&t| bulkhead_core::store::rfc3339(t)),
            error: error_of(name),
            next_fires: s.map(|s| zoned(s, &fires)).unwrap_or_default(),
            params: wf
                .params
                .iter()
                .map(|(k, p)| (k.clone(), ParamInfo::from(p)))
                .collect(),
            recent: recent
                .into_iter()
                .map(|r| RunBrief {
                    at: r.started_at.or(r.due_at),
                    run_id: r.run_id,
                    status: r.status.as_str().to_string(),
                })
                .collect(),
            success_rate,
        });
    }
    let broken_files = catalog
        .files
        .values()
        .filter(|f| f.error.is_some())
        .cloned()
        .collect();
    Ok(Json(WorkflowList {
        workflows,
        broken_files,
    }))
}

/// The next `n` fires of `schedule` after `now` (ms since the epoch).
fn next_fires(schedule: &bulkhead_core::trigger::Schedule, now: i64, n: usize) -> Vec<i64> {
    std::iter::successors(schedule.next_after(now), |&t| schedule.next_after(t))
        .take(n)
        .collect()
}

/// `times` (ms since the epoch) in the schedule's time zone, RFC 3339 with its offset.
fn zoned(schedule: &bulkhead_core::trigger::Schedule, times: &[i64]) -> Vec<String> {
    use chrono::TimeZone;
    times
        .iter()
        .filter_map(|&t| schedule.timezone.timestamp_millis_opt(t).single())
        .map(|local| local.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
        .collect()
}

#[utoipa::path(get, path = "/api/plugins", responses((status = 200, description = "Plugins of the plugin folder", body = [PluginStatus]), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody)))]
async fn list_plugins(State(api): State<Api>) -> Json<Vec<PluginStatus>> {
    let catalog = api.server.catalog.read().unwrap_or_else(|e| e.into_inner());
    Json(catalog.plugins.values().cloned().collect())
}

#[utoipa::path(get, path = "/api/hosts", responses((status = 200, description = "The `bulkhead serve` hosts on this store whose heartbeat is recent (one on SQLite; every host of the cluster on PostgreSQL)", body = HostList), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody), (status = 500, description = "The state store failed", body = ErrorBody)))]
async fn list_hosts(State(api): State<Api>) -> ApiResult<Json<HostList>> {
    let now = api.server.clock.now_ms();
    let hosts = api
        .server
        .store
        .hosts(now, bulkhead_core::store::HOST_ALIVE_MS)
        .await?;
    Ok(Json(HostList {
        hosts: hosts.into_iter().map(HostInfo::from).collect(),
    }))
}

#[utoipa::path(post, path = "/api/runs", request_body = TriggerRequest, security(("bearer" = [])),
    responses((status = 201, description = "The run is recorded; it starts when due", body = Triggered,
        headers(("Location" = String, description = "The run: `/api/runs/{run_id}`"))), (status = 400, description = "The body or a field is invalid (named in the error)", body = ErrorBody), (status = 401, description = "Missing or wrong bearer token", body = ErrorBody), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody), (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody), (status = 415, description = "The body is not `application/json`", body = ErrorBody), (status = 503, description = "The server is shutting down", body = ErrorBody)))]
async fn create_run(
    State(api): State<Api>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<(
    StatusCode,
    [(header::HeaderName, String); 1],
    Json<Triggered>,
)> {
    if !guard::is_json(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON, sent with `Content-Type: application/json`",
        ));
    }
    let req = DecodedTrigger::decode(&body, api.server.clock.now_ms())?;
    if api.server.stop.drain.is_cancelled() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        ));
    }
    let Some(loaded) = api.server.workflow(&req.workflow) else {
        let names: Vec<String> = api
            .server
            .catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .workflows
            .keys()
            .cloned()
            .collect();
        let hint =
            bulkhead_core::suggest::did_you_mean(&req.workflow, names.iter().map(String::as_str));
        return Err(ApiError::bad_request(format!(
            "field `workflow`: no workflow named `{}` is loaded{hint}",
            req.workflow
        )));
    };
    let given = match req.params {
        serde_json::Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| (k, bulkhead_core::workflow::params::Given::Json(v)))
            .collect(),
        _ => Vec::new(),
    };
    let params = bulkhead_core::workflow::params::resolve(&loaded.workflow.params, given).map_err(
        |problems| ApiError::bad_request(format!("field `params`: {}", problems.join("; "))),
    )?;
    let (params, due_at) = (serde_json::Value::Object(params), req.due_at);
    let run_id = api.server.trigger(&req.workflow, params, due_at).await?;
    let due = due_at.unwrap_or_else(|| api.server.clock.now_ms());
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/runs/{run_id}"))],
        Json(Triggered {
            run_id,
            workflow: req.workflow,
            due_at: bulkhead_core::store::rfc3339(due),
        }),
    ))
}

#[utoipa::path(get, path = "/api/runs", params(RunsQuery), responses((status = 200, description = "A page of runs, newest first", body = RunPage), (status = 400, description = "A query parameter is invalid (named in the error)", body = ErrorBody), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody)))]
async fn list_runs(
    State(api): State<Api>,
    query: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<RunPage>> {
    let Query(q) =
        query.map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "query parameter `status`: `{s}` is not one of pending, running, interrupted, succeeded, failed, cancelled"
            ))
        })?),
    };
    let limit = q.limit.unwrap_or(50) as usize;
    if limit == 0 || limit > 500 {
        return Err(ApiError::bad_request(
            "query parameter `limit`: must be between 1 and 500",
        ));
    }
    if let Some(c) = &q.cursor {
        if uuid::Uuid::try_parse(c).is_err() {
            return Err(ApiError::bad_request(format!(
                "query parameter `cursor`: `{c}` is not a run id; pass the `next_cursor` of the previous page"
            )));
        }
    }
    let until = match &q.until {
        None => None,
        Some(t) => {
            let at = chrono::DateTime::parse_from_rfc3339(t).map_err(|_| {
                ApiError::bad_request(format!(
                    "query parameter `until`: `{t}` is not an RFC 3339 time such as 2026-12-01T08:00:00Z"
                ))
            })?;
            let ms = at.timestamp_millis().clamp(0, (1 << 48) - 1) as u64;
            // The smallest UUIDv7 of that millisecond: every run created before it sorts lower.
            Some(format!(
                "{:08x}-{:04x}-7000-8000-000000000000",
                ms >> 16,
                ms & 0xffff
            ))
        }
    };
    let before = match (q.cursor, until) {
        (Some(c), Some(u)) => Some(c.min(u)),
        (c, u) => c.or(u),
    };
    let mut runs = api
        .server
        .store
        .list(&RunFilter {
            workflow: q.workflow,
            status,
            limit: limit + 1,
            before,
        })
        .await?;
    let next_cursor = if runs.len() > limit {
        runs.truncate(limit);
        runs.last().map(|r| r.run_id.clone())
    } else {
        None
    };
    Ok(Json(RunPage { runs, next_cursor }))
}

#[utoipa::path(get, path = "/api/runs/{run_id}", params(("run_id" = String, Path, description = "The run's id"), RunQuery), responses((status = 200, description = "The run report (one page of its tasks if asked)", body = RunReport), (status = 400, description = "A bad `task_after` or `task_limit`", body = ErrorBody), (status = 404, description = "No such run (or task)", body = ErrorBody), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody)))]
async fn get_run(
    State(api): State<Api>,
    Path(run_id): Path<String>,
    Query(q): Query<RunQuery>,
) -> ApiResult<Response> {
    if let Some(n) = q.task_limit {
        if !(1..=MAX_TASK_PAGE).contains(&n) {
            return Err(ApiError::bad_request(format!(
                "`task_limit` must be 1 to {MAX_TASK_PAGE}"
            )));
        }
    }
    let trigger = || api.server.store.trigger_of_run(&run_id);
    let permit = heavy(&api).await?;
    match api.server.store.load(&run_id).await {
        Ok(mut run) => {
            let due_at = trigger()
                .await?
                .map(|t| bulkhead_core::store::rfc3339(t.due_at));
            let next = page(&mut run, q.task_after.as_deref(), q.task_limit)?;
            // Building and writing a large report is CPU work: on the blocking pool, streamed
            // out as it is written, holding its turn until it is sent.
            Ok(stream_json(move || {
                let _permit = permit;
                let mut report = RunReport::from_stored(&run);
                report.due_at = due_at;
                report.next_task_after = next;
                report
            }))
        }
        Err(StoreError::UnknownRun(_)) => {
            let t = not_started(&api, &run_id).await?;
            Ok(Json(RunReport::not_started(&t)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// The trigger of `run_id` when it stands for a run that has not started (pending, or cancelled
/// or failed before it started); 404 otherwise. For a run the store does not have.
async fn not_started(api: &Api, run_id: &str) -> ApiResult<bulkhead_core::store::Trigger> {
    match api.server.store.trigger_of_run(run_id).await? {
        Some(t) if t.stands_for_a_run(api.server.clock.now_ms()) => Ok(t),
        _ => Err(ApiError::not_found(format!("no run `{run_id}`"))),
    }
}

/// A turn for a read that loads a whole run.
async fn heavy(api: &Api) -> ApiResult<tokio::sync::OwnedSemaphorePermit> {
    api.heavy
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping"))
}

/// Keeps only the page of tasks after `after` (at most `limit` of them) and their attempts;
/// returns the task to pass as `task_after` for the next page, if there is one.
fn page(
    run: &mut bulkhead_core::store::StoredRun,
    after: Option<&str>,
    limit: Option<usize>,
) -> ApiResult<Option<String>> {
    if after.is_none() && limit.is_none() {
        return Ok(None);
    }
    let start = match after {
        None => 0,
        Some(id) => match run.tasks.iter().position(|t| t.task == id) {
            Some(i) => i + 1,
            None => {
                return Err(ApiError::bad_request(format!(
                    "`task_after`: run `{}` has no task `{id}`",
                    run.run_id
                )))
            }
        },
    };
    let end = start
        .saturating_add(limit.unwrap_or(MAX_TASK_PAGE))
        .min(run.tasks.len());
    let next = (end < run.tasks.len() && end > start).then(|| run.tasks[end - 1].task.clone());
    run.tasks = run.tasks.drain(start..end).collect();
    let kept: std::collections::HashSet<&str> = run.tasks.iter().map(|t| t.task.as_str()).collect();
    let attempts = std::mem::take(&mut run.attempts);
    run.attempts = attempts
        .into_iter()
        .filter(|a| kept.contains(a.task.as_str()))
        .collect();
    Ok(next)
}

/// A JSON body written on the blocking pool by `make` and streamed as it is written: a large
/// document is never held twice (value and text), and the async workers never serialise it.
fn stream_json<T: Serialize + 'static>(make: impl FnOnce() -> T + Send + 'static) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
    tokio::task::spawn_blocking(move || {
        let value = make();
        let mut out = std::io::BufWriter::with_capacity(64 << 10, ChunkSender(tx));
        // The only error is a client that went away: then there is nobody to tell.
        let _ = serde_json::to_writer(&mut out, &value);
        let _ = std::io::Write::flush(&mut out);
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(chunks),
    )
        .into_response()
}

/// Hands written bytes to the response body; fails once the client is gone.
struct ChunkSender(tokio::sync::mpsc::Sender<bytes::Bytes>);

impl std::io::Write for ChunkSender {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(bytes::Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[utoipa::path(get, path = "/api/runs/{run_id}/tasks/{task}/logs", params(("run_id" = String, Path, description = "The run's id"), ("task" = String, Path, description = "The task's id"), LogsQuery), responses((status = 200, description = "The task's status, output and every attempt's log (a running attempt's log so far, when it runs on this host)", body = TaskLogs), (status = 400, description = "A bad `max_bytes`", body = ErrorBody), (status = 404, description = "No such run (or task)", body = ErrorBody), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody)))]
async fn task_logs(
    State(api): State<Api>,
    Path((run_id, task)): Path<(String, String)>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Json<TaskLogs>> {
    let max = q.max_bytes.unwrap_or(DEFAULT_LOG_BYTES);
    if !(1..=MAX_LOG_BYTES).contains(&max) {
        return Err(ApiError::bad_request(format!(
            "`max_bytes` must be 1 to {MAX_LOG_BYTES}"
        )));
    }
    let _permit = heavy(&api).await?;
    let run = api.server.store.load(&run_id).await?;
    let Some(t) = run.tasks.iter().find(|t| t.task == task) else {
        return Err(ApiError::not_found(format!(
            "run `{run_id}` has no task `{task}`"
        )));
    };
    let logs = api.server.store.logs(&run_id, Some(&task), None).await?;
    // The attempt running now, if any: its log is in the sandbox, not yet in the store.
    let running = run
        .attempts
        .iter()
        .filter(|a| a.task == task && a.status == bulkhead_core::store::AttemptStatus::Running)
        .map(|a| a.attempt)
        .max();
    let live = running.and_then(|_| api.server.host.live_log(&run_id, &task));
    Ok(Json(TaskLogs {
        status: t.state.as_str().to_string(),
        output: t.output.clone().unwrap_or_default(),
        attempts: logs
            .into_iter()
            .map(|l| {
                let now = Some(l.attempt) == running && live.is_some();
                let text = match (&live, now) {
                    (Some(bytes), true) => String::from_utf8_lossy(bytes).into_owned(),
                    _ => l.log,
                };
                let (log, truncated) = tail(text, max);
                AttemptLogBody {
                    attempt: l.attempt,
                    log,
                    truncated,
                    running: now,
                }
            })
            .collect(),
        run_id,
        task,
    }))
}

/// The last `max` bytes of `log` (cut at a character boundary), and whether anything was cut.
fn tail(log: String, max: usize) -> (String, bool) {
    if log.len() <= max {
        return (log, false);
    }
    let mut start = log.len() - max;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    (log[start..].to_string(), true)
}

#[utoipa::path(post, path = "/api/runs/{run_id}/cancel", params(("run_id" = String, Path, description = "The run's id")), security(("bearer" = [])),
    responses((status = 202, description = "Cancelled, or its host was asked to cancel it", body = Accepted), (status = 401, description = "Missing or wrong bearer token", body = ErrorBody), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody), (status = 404, description = "No such run (or task)", body = ErrorBody), (status = 409, description = "The run already ended, or is starting right now", body = ErrorBody), (status = 415, description = "The body is not `application/json`", body = ErrorBody)))]
async fn cancel_run(
    State(api): State<Api>,
    Path(run_id): Path<String>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let outcome = api
        .server
        .store
        .request_cancel(&run_id, bulkhead_core::store::now_ms())
        .await?;
    let now = api.server.clock.now_ms();
    let status = match outcome {
        CancelOutcome::Asked => {
            api.server
                .live
                .send(crate::serve::LiveEvent::new("run_cancelling", &run_id, now));
            "cancelling"
        }
        CancelOutcome::Cancelled => {
            let mut e = crate::serve::LiveEvent::new("run_finished", &run_id, now);
            e.status = Some("cancelled".into());
            api.server.live.send(e);
            "cancelled"
        }
        CancelOutcome::AlreadyEnded(status) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "run `{run_id}` already ended ({}); there is nothing to cancel",
                    status.as_str()
                ),
            ))
        }
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            run_id,
            status: status.into(),
        }),
    ))
}

#[utoipa::path(post, path = "/api/runs/{run_id}/tasks/{task}/retry", params(("run_id" = String, Path, description = "The run's id"), ("task" = String, Path, description = "The task's id")), security(("bearer" = [])),
    responses((status = 202, description = "The task runs again, with the dependents it skipped", body = Accepted), (status = 401, description = "Missing or wrong bearer token", body = ErrorBody), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody), (status = 404, description = "No such run (or task)", body = ErrorBody), (status = 409, description = "The task is not failed or cancelled, or the run is still going", body = ErrorBody), (status = 415, description = "The body is not `application/json`", body = ErrorBody), (status = 503, description = "The server is shutting down", body = ErrorBody)))]
async fn retry_task(
    State(api): State<Api>,
    Path((run_id, task)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    if api.server.stop.drain.is_cancelled() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        ));
    }
    let run = api.server.store.load(&run_id).await?;
    api.server.host.retry_target(&run, &task)?;
    api.server
        .spawn_retry(run_id.clone(), run.workflow.clone(), task);
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            run_id,
            status: "retrying".into(),
        }),
    ))
}

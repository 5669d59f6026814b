//! `GET /api/workflows/{name}/graph` and `GET /api/runs/{run_id}/graph`: a workflow's tasks in
//! the planner's layers, with their edges, for drawing the DAG.

use super::{Api, ApiError, ApiResult, ErrorBody};
use axum::extract::{Path, State};
use axum::Json;
use bulkhead_core::store::StoreError;
use bulkhead_core::workflow::Workflow;
use serde::Serialize;
use utoipa::ToSchema;

/// A workflow's graph.
#[derive(Debug, Serialize, ToSchema)]
pub struct Graph {
    /// The workflow's name.
    pub workflow: String,
    /// SHA-256 of the workflow file the graph is drawn from.
    pub hash: String,
    /// Every task, in file order.
    pub tasks: Vec<GraphTask>,
    /// Task ids by layer: layer 0 needs nothing; a task is one layer after the deepest task it
    /// needs, so every edge goes from a lower layer to a higher one.
    pub layers: Vec<Vec<String>>,
    /// Every edge, from the task needed to the task that needs it.
    pub edges: Vec<GraphEdge>,
}

/// One task of a [`Graph`].
#[derive(Debug, Serialize, ToSchema)]
pub struct GraphTask {
    /// The task id.
    pub id: String,
    /// Its plugin.
    pub plugin: String,
    /// Its layer.
    pub layer: usize,
    /// The tasks it needs.
    pub needs: Vec<String>,
    /// Whether its failure leaves the run's status alone.
    pub optional: bool,
}

/// An edge of a [`Graph`].
#[derive(Debug, Serialize, ToSchema)]
pub struct GraphEdge {
    /// The task needed.
    pub from: String,
    /// The task that needs it.
    pub to: String,
}

/// The graph of `wf`. Linear in its tasks and edges.
pub fn graph_of(wf: &Workflow) -> Graph {
    let layer_of = wf.plan().layers();
    let depth = layer_of.iter().max().map_or(0, |d| d + 1);
    let mut layers = vec![Vec::new(); depth];
    let mut edges = Vec::new();
    let tasks = wf
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            layers[layer_of[i]].push(t.id.clone());
            let needs: Vec<String> = t.needs.iter().map(|&n| wf.tasks[n].id.clone()).collect();
            edges.extend(needs.iter().map(|n| GraphEdge {
                from: n.clone(),
                to: t.id.clone(),
            }));
            GraphTask {
                id: t.id.clone(),
                plugin: t.plugin.to_string(),
                layer: layer_of[i],
                needs,
                optional: t.optional,
            }
        })
        .collect();
    Graph {
        workflow: wf.name.clone(),
        hash: wf.hash.clone(),
        tasks,
        layers,
        edges,
    }
}

#[utoipa::path(get, path = "/api/workflows/{name}/graph", params(("name" = String, Path, description = "The workflow's name")), responses((status = 200, description = "The loaded workflow's tasks in layers, with their edges", body = Graph), (status = 404, description = "No such workflow is loaded", body = ErrorBody), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody)))]
pub(super) async fn workflow_graph(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> ApiResult<Json<Graph>> {
    let loaded = api
        .server
        .workflow(&name)
        .ok_or_else(|| ApiError::not_found(format!("no workflow named `{name}` is loaded")))?;
    Ok(Json(graph_of(&loaded.workflow)))
}

#[utoipa::path(get, path = "/api/runs/{run_id}/graph", params(("run_id" = String, Path, description = "The run's id")), responses((status = 200, description = "The run's workflow (the version it started with; for a run not started yet, the loaded one) in layers, with its edges", body = Graph), (status = 404, description = "No such run", body = ErrorBody), (status = 403, description = "No-token mode: the request's Host or Origin is not this server", body = ErrorBody), (status = 500, description = "The state store failed, or the run's stored workflow is damaged", body = ErrorBody)))]
pub(super) async fn run_graph(
    State(api): State<Api>,
    Path(run_id): Path<String>,
) -> ApiResult<Json<Graph>> {
    let _permit = super::heavy(&api).await?;
    match api.server.store.load(&run_id).await {
        Ok(run) => {
            let wf = bulkhead_core::workflow::stored::of_run(&run).map_err(|e| {
                tracing::error!(run_id, error = %e, "the run's stored workflow does not load");
                ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "the run's stored workflow does not load (see the server's log)",
                )
            })?;
            Ok(Json(graph_of(&wf)))
        }
        Err(StoreError::UnknownRun(_)) => {
            let t = super::not_started(&api, &run_id).await?;
            let loaded = api.server.workflow(&t.workflow).ok_or_else(|| {
                ApiError::not_found(format!(
                    "run `{run_id}` is of workflow `{}`, which is not loaded",
                    t.workflow
                ))
            })?;
            Ok(Json(graph_of(&loaded.workflow)))
        }
        Err(e) => Err(e.into()),
    }
}

//! The JSON document written to a plugin's stdin: `bulkhead_abi::Input`, filled from the workflow
//! and the run. It is built in parts: the document up to `inputs`, then each needed task's id
//! and its output's JSON text, shared with every other dependent (never copied per dependent),
//! then the end. Read one after the other, the parts are exactly the document.

use crate::workflow::Workflow;
use bulkhead_abi::{idempotency_key, Input, ABI_VERSION};
use bytes::Bytes;
use serde_json::Value;
use std::sync::Arc;

/// Per-run parts of the input, built once and shared by every attempt of the run (the document
/// is built on the thread that runs the attempt, which also frees it).
pub(super) struct Context {
    wf: Arc<Workflow>,
    run_id: String,
    run_params: Value,
}

impl Context {
    pub(super) fn new(wf: Arc<Workflow>, run_id: String, run_params: Value) -> Self {
        Context {
            wf,
            run_id,
            run_params,
        }
    }

    /// The stdin of attempt `attempt` of task `t`, in parts; `outputs[i]` is the output (JSON
    /// text) of the task's `i`-th need (`None` or missing: `null`).
    pub(super) fn document(&self, t: usize, attempt: u32, outputs: &[Option<Bytes>]) -> Vec<Bytes> {
        let task = &self.wf.tasks[t];
        let key = idempotency_key(&self.run_id, &task.id);
        let head: Input<&str, &Value, &Value, [(); 0]> = Input {
            abi: ABI_VERSION,
            workflow: &self.wf.name,
            run_id: &self.run_id,
            task: &task.id,
            attempt,
            idempotency_key: &key,
            params: &task.params,
            run_params: &self.run_params,
            // A placeholder: `inputs` is the last field, so the text ends `"inputs":[]}`.
            inputs: [],
        };
        // Serialising values we built cannot fail (string keys only).
        let mut text = serde_json::to_vec(&head).unwrap_or_default();
        text.truncate(text.len().saturating_sub(b"[]}".len()));
        text.push(b'{');
        let mut parts = Vec::with_capacity(2 * task.needs.len() + 2);
        for (i, &n) in task.needs.iter().enumerate() {
            if i > 0 {
                text.push(b',');
            }
            // An id is a plain string: serialising it cannot fail.
            serde_json::to_writer(&mut text, &self.wf.tasks[n].id).unwrap_or_default();
            text.push(b':');
            parts.push(Bytes::from(std::mem::take(&mut text)));
            parts.push(
                outputs
                    .get(i)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| Bytes::from_static(b"null")),
            );
        }
        text.extend_from_slice(b"}}");
        parts.push(Bytes::from(text));
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parts, joined, are exactly the document `bulkhead_abi::Input` describes.
    #[test]
    fn the_parts_make_the_whole_document() {
        let yaml = "name: w\ntasks:\n  a: {plugin: p}\n  b.q-2: {plugin: p}\n  c: {plugin: p, needs: [a, b.q-2], params: {k: [1, 2]}}\n";
        let wf = crate::workflow::parse(yaml, std::path::Path::new("w.yaml")).unwrap();
        let params = serde_json::json!({"day": "monday"});
        let ctx = Context::new(Arc::new(wf), "run-1".into(), params);
        let out_a = Bytes::from_static(br#"{"rows": [1, 2, 3]}"#);
        let parts = ctx.document(2, 3, &[Some(out_a.clone()), None]);
        let doc: Value = serde_json::from_slice(&parts.concat()).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({
                "abi": ABI_VERSION,
                "workflow": "w",
                "run_id": "run-1",
                "task": "c",
                "attempt": 3,
                "idempotency_key": idempotency_key("run-1", "c"),
                "params": {"k": [1, 2]},
                "run_params": {"day": "monday"},
                "inputs": {"a": {"rows": [1, 2, 3]}, "b.q-2": null},
            })
        );
        assert!(
            parts.iter().any(|p| p.as_ptr() == out_a.as_ptr()),
            "the output is shared, not copied"
        );
        let first: Value = serde_json::from_slice(&ctx.document(0, 1, &[]).concat()).unwrap();
        assert_eq!(first["inputs"], serde_json::json!({}));
    }
}

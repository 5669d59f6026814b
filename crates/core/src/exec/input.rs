//! The JSON document written to a plugin's stdin: `bulkhead_abi::Input`, filled from the workflow
//! and the run, with `inputs` streamed from the outputs already held.

use crate::workflow::Workflow;
use bulkhead_abi::{idempotency_key, Input, ABI_VERSION};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;

/// Per-run parts of the input, built once.
pub(super) struct Context<'a> {
    wf: &'a Workflow,
    run_id: &'a str,
    run_params: &'a Value,
}

/// `inputs`: the output of every task in `needs`, by task id.
struct Inputs<'a, F> {
    wf: &'a Workflow,
    needs: &'a [usize],
    output: F,
}

impl<'a, F: Fn(usize) -> Option<&'a Value>> Serialize for Inputs<'a, F> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.needs.len()))?;
        for &n in self.needs {
            map.serialize_entry(
                &self.wf.tasks[n].id,
                (self.output)(n).unwrap_or(&Value::Null),
            )?;
        }
        map.end()
    }
}

impl<'a> Context<'a> {
    pub(super) fn new(wf: &'a Workflow, run_id: &'a str, run_params: &'a Value) -> Self {
        Context {
            wf,
            run_id,
            run_params,
        }
    }

    /// The stdin bytes of attempt `attempt` of task `t`; `output(n)` gives task `n`'s output.
    pub(super) fn document<'o, F>(&self, t: usize, attempt: u32, output: F) -> Vec<u8>
    where
        F: Fn(usize) -> Option<&'o Value>,
        'a: 'o,
    {
        let task = &self.wf.tasks[t];
        let key = idempotency_key(self.run_id, &task.id);
        let doc: Input<&str, &Value, &Value, _> = Input {
            abi: ABI_VERSION,
            workflow: &self.wf.name,
            run_id: self.run_id,
            task: &task.id,
            attempt,
            idempotency_key: &key,
            params: &task.params,
            run_params: self.run_params,
            inputs: Inputs {
                wf: self.wf,
                needs: &task.needs,
                output,
            },
        };
        // Serialising values we built cannot fail (string keys only).
        serde_json::to_vec(&doc).unwrap_or_default()
    }
}

//! The planner: which tasks may run, given the dependency graph and what has happened so far.
//!
//! Pure by rule (docs/architecture.md, "Rules of the house"): no clock, no I/O, no wasm. The executor feeds it outcomes
//! and asks it for the next ready task; it is property-tested on random DAGs.

mod graph;

pub use graph::find_cycles;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The static shape of a run: dependencies and priorities, by task index (file order).
#[derive(Debug, Clone)]
pub struct Plan {
    needs: Vec<Vec<usize>>,
    dependents: Vec<Vec<usize>>,
    priority: Vec<i32>,
}

/// Where a task stands in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Some of its needs have not succeeded yet.
    Waiting,
    /// Everything it needs succeeded; waiting for a slot.
    Ready,
    /// An attempt is running, or it is waiting out a retry delay.
    Running,
    /// Done, with an output.
    Succeeded,
    /// Failed for good.
    Failed,
    /// Never ran: something it needs (directly or not) failed for good.
    Skipped,
}

impl Plan {
    /// Builds a plan. `needs[i]` lists the tasks task `i` needs; the graph must be acyclic
    /// (validation guarantees it).
    pub fn new(needs: Vec<Vec<usize>>, priority: Vec<i32>) -> Plan {
        let mut dependents = vec![Vec::new(); needs.len()];
        for (task, ns) in needs.iter().enumerate() {
            for &n in ns {
                dependents[n].push(task);
            }
        }
        Plan {
            needs,
            dependents,
            priority,
        }
    }

    /// The layer of each task: 0 for a task that needs nothing, else one more than the
    /// deepest task it needs (the longest path to it). Tasks of one layer never need each
    /// other, so drawing layers side by side draws every edge forwards. Linear in the tasks
    /// and edges.
    pub fn layers(&self) -> Vec<usize> {
        let n = self.len();
        let mut layer = vec![0usize; n];
        let mut waiting: Vec<usize> = self.needs.iter().map(Vec::len).collect();
        let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
        while let Some(i) = ready.pop() {
            for &d in &self.dependents[i] {
                layer[d] = layer[d].max(layer[i] + 1);
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    ready.push(d);
                }
            }
        }
        layer
    }

    /// Task `i` and every task downstream of it (that needs it, directly or not), in file
    /// order. Linear in the tasks and edges reached.
    pub fn downstream(&self, i: usize) -> Vec<usize> {
        let mut marked = vec![false; self.len()];
        marked[i] = true;
        let mut stack = vec![i];
        while let Some(t) = stack.pop() {
            for &d in &self.dependents[t] {
                if !marked[d] {
                    marked[d] = true;
                    stack.push(d);
                }
            }
        }
        (0..self.len()).filter(|&t| marked[t]).collect()
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.needs.len()
    }

    /// Whether the plan has no tasks.
    pub fn is_empty(&self) -> bool {
        self.needs.is_empty()
    }

    /// The tasks task `i` needs.
    pub fn needs(&self, i: usize) -> &[usize] {
        &self.needs[i]
    }
}

/// The mutable state of one run over a [`Plan`].
#[derive(Debug, Clone)]
pub struct RunState {
    state: Vec<TaskState>,
    unmet: Vec<u32>,
    ready: BinaryHeap<(i32, Reverse<usize>)>,
    open: usize,
}

impl RunState {
    /// A fresh run: tasks without needs are ready.
    pub fn new(plan: &Plan) -> RunState {
        let mut rs = RunState {
            state: vec![TaskState::Waiting; plan.len()],
            unmet: plan.needs.iter().map(|n| n.len() as u32).collect(),
            ready: BinaryHeap::new(),
            open: plan.len(),
        };
        for i in 0..plan.len() {
            if rs.unmet[i] == 0 {
                rs.make_ready(plan, i);
            }
        }
        rs
    }

    /// The state of a run resumed from storage: `finished[i]` is `Succeeded`, `Failed` or
    /// `Skipped` for tasks that ended; anything else means not finished (it will run again).
    /// Returns the state and the unfinished tasks that must now be skipped because something they
    /// need failed or was skipped (file order).
    pub fn restore(plan: &Plan, finished: &[TaskState]) -> (RunState, Vec<usize>) {
        let n = plan.len();
        let mut state: Vec<TaskState> = (0..n)
            .map(|i| match finished.get(i) {
                Some(s @ (TaskState::Succeeded | TaskState::Failed | TaskState::Skipped)) => *s,
                _ => TaskState::Waiting,
            })
            .collect();
        let mut skipped = Vec::new();
        let mut stack: Vec<usize> = (0..n)
            .filter(|&i| matches!(state[i], TaskState::Failed | TaskState::Skipped))
            .flat_map(|i| plan.dependents[i].iter().copied())
            .collect();
        while let Some(d) = stack.pop() {
            if state[d] == TaskState::Waiting {
                state[d] = TaskState::Skipped;
                skipped.push(d);
                stack.extend_from_slice(&plan.dependents[d]);
            }
        }
        skipped.sort_unstable();
        let unmet = (0..n)
            .map(|i| {
                plan.needs[i]
                    .iter()
                    .filter(|&&x| state[x] != TaskState::Succeeded)
                    .count() as u32
            })
            .collect();
        let open = state.iter().filter(|s| **s == TaskState::Waiting).count();
        let mut rs = RunState {
            state,
            unmet,
            ready: BinaryHeap::new(),
            open,
        };
        for i in 0..n {
            if rs.state[i] == TaskState::Waiting && rs.unmet[i] == 0 {
                rs.make_ready(plan, i);
            }
        }
        (rs, skipped)
    }

    fn make_ready(&mut self, plan: &Plan, i: usize) {
        self.state[i] = TaskState::Ready;
        self.ready.push((plan.priority[i], Reverse(i)));
    }

    /// The state of task `i`.
    pub fn state(&self, i: usize) -> TaskState {
        self.state[i]
    }

    /// Takes the next ready task (highest priority, then file order) and marks it running.
    pub fn start_next(&mut self) -> Option<usize> {
        let (_, Reverse(i)) = self.ready.pop()?;
        self.state[i] = TaskState::Running;
        Some(i)
    }

    /// Number of tasks ready to start.
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// Puts a running task back among the ready ones (its retry delay is over).
    pub fn retry(&mut self, plan: &Plan, i: usize) {
        debug_assert_eq!(self.state[i], TaskState::Running);
        self.make_ready(plan, i);
    }

    /// Records that running task `i` succeeded; dependents whose needs are now all met become ready.
    pub fn succeed(&mut self, plan: &Plan, i: usize) {
        debug_assert_eq!(self.state[i], TaskState::Running);
        self.state[i] = TaskState::Succeeded;
        self.open -= 1;
        for &d in &plan.dependents[i] {
            self.unmet[d] -= 1;
            if self.unmet[d] == 0 && self.state[d] == TaskState::Waiting {
                self.make_ready(plan, d);
            }
        }
    }

    /// Records that running task `i` failed for good; returns the tasks skipped because of it
    /// (everything downstream that has not run), in file order.
    pub fn fail(&mut self, plan: &Plan, i: usize) -> Vec<usize> {
        debug_assert_eq!(self.state[i], TaskState::Running);
        self.state[i] = TaskState::Failed;
        self.open -= 1;
        let mut skipped = Vec::new();
        let mut stack: Vec<usize> = plan.dependents[i].clone();
        while let Some(d) = stack.pop() {
            if self.state[d] == TaskState::Waiting {
                self.state[d] = TaskState::Skipped;
                self.open -= 1;
                skipped.push(d);
                stack.extend_from_slice(&plan.dependents[d]);
            }
        }
        skipped.sort_unstable();
        skipped
    }

    /// Whether every task has finished (succeeded, failed or been skipped).
    pub fn is_finished(&self) -> bool {
        self.open == 0
    }
}

#[cfg(test)]
mod tests;

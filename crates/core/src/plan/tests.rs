use super::*;
use proptest::prelude::*;

/// A random DAG: task `i` needs a random subset of tasks before it.
fn dag() -> impl Strategy<Value = Vec<Vec<usize>>> {
    (1usize..40).prop_flat_map(|n| {
        (0..n)
            .map(|i| proptest::sample::subsequence((0..i).collect::<Vec<_>>(), 0..=i.min(4)))
            .collect::<Vec<_>>()
    })
}

/// Runs the planner to the end, failing the tasks in `fails`, starting up to `width` at once.
fn simulate(needs: &[Vec<usize>], fails: &[bool], width: usize) -> (RunState, Vec<usize>) {
    let plan = Plan::new(needs.to_vec(), vec![0; needs.len()]);
    let mut rs = RunState::new(&plan);
    let mut started = Vec::new();
    let mut running = Vec::new();
    loop {
        while running.len() < width {
            let Some(t) = rs.start_next() else { break };
            // Never before its needs: every need has succeeded.
            for &n in plan.needs(t) {
                assert_eq!(
                    rs.state(n),
                    TaskState::Succeeded,
                    "task {t} started before need {n}"
                );
            }
            started.push(t);
            running.push(t);
        }
        let Some(t) = running.pop() else { break };
        if fails[t] {
            for s in rs.fail(&plan, t) {
                assert!(
                    !started.contains(&s),
                    "skipped task {s} had already started"
                );
            }
        } else {
            rs.succeed(&plan, t);
        }
    }
    (rs, started)
}

proptest! {
    #[test]
    fn every_task_runs_at_most_once_and_the_run_finishes(
        needs in dag(), seed in any::<u64>(), width in 1usize..5,
    ) {
        let fails: Vec<bool> = (0..needs.len()).map(|i| (seed >> (i % 64)) & 1 == 1 && i % 3 == 0).collect();
        let (rs, started) = simulate(&needs, &fails, width);
        let mut sorted = started.clone();
        sorted.sort_unstable();
        sorted.dedup();
        prop_assert_eq!(sorted.len(), started.len(), "a task started twice");
        prop_assert!(rs.is_finished());
        // Skips propagate: a task is skipped exactly when some need did not succeed.
        for (t, ns) in needs.iter().enumerate() {
            let blocked = ns.iter().any(|&n| rs.state(n) != TaskState::Succeeded);
            let state = rs.state(t);
            if blocked {
                prop_assert_eq!(state, TaskState::Skipped, "task {} should be skipped", t);
            } else {
                prop_assert!(matches!(state, TaskState::Succeeded | TaskState::Failed));
                prop_assert_eq!(state == TaskState::Failed, fails[t]);
            }
        }
    }

    #[test]
    fn without_failures_everything_succeeds(needs in dag()) {
        let fails = vec![false; needs.len()];
        let (rs, started) = simulate(&needs, &fails, 3);
        prop_assert_eq!(started.len(), needs.len());
        prop_assert!((0..needs.len()).all(|t| rs.state(t) == TaskState::Succeeded));
    }
}

#[test]
fn ready_order_is_priority_then_file_order() {
    let plan = Plan::new(vec![vec![], vec![], vec![], vec![]], vec![0, 5, 0, 5]);
    let mut rs = RunState::new(&plan);
    let order: Vec<usize> = std::iter::from_fn(|| rs.start_next()).collect();
    assert_eq!(order, vec![1, 3, 0, 2]);
}

#[test]
fn retry_puts_a_task_back() {
    let plan = Plan::new(vec![vec![], vec![0]], vec![0, 0]);
    let mut rs = RunState::new(&plan);
    assert_eq!(rs.start_next(), Some(0));
    assert_eq!(rs.start_next(), None);
    rs.retry(&plan, 0);
    assert_eq!(rs.start_next(), Some(0));
    rs.succeed(&plan, 0);
    assert_eq!(rs.start_next(), Some(1));
}

#[test]
fn finds_and_orders_a_cycle() {
    // 0 needs 1, 1 needs 2, 2 needs 0; 3 is free.
    let needs = [vec![1], vec![2], vec![0], vec![]];
    let cycles = find_cycles(needs.iter().map(Vec::as_slice));
    assert_eq!(cycles, vec![vec![0, 1, 2]]);
    let acyclic = [vec![], vec![0], vec![0, 1]];
    assert!(find_cycles(acyclic.iter().map(Vec::as_slice)).is_empty());
}

proptest! {
    /// Stopping a run anywhere and restoring it from what had finished ends the same way as an
    /// uninterrupted run: same final states, and no finished task runs again.
    #[test]
    fn a_restored_run_ends_like_an_uninterrupted_one(
        needs in dag(), seed in any::<u64>(), stop_after in 0usize..40,
    ) {
        let fails: Vec<bool> = (0..needs.len()).map(|i| (seed >> (i % 64)) & 1 == 1 && i % 4 == 0).collect();
        let (whole, _) = simulate(&needs, &fails, 1);
        let plan = Plan::new(needs.clone(), vec![0; needs.len()]);
        let mut rs = RunState::new(&plan);
        for _ in 0..stop_after {
            let Some(t) = rs.start_next() else { break };
            if fails[t] { rs.fail(&plan, t); } else { rs.succeed(&plan, t); }
        }
        // A task started but not finished when the host died counts as unfinished.
        let _in_flight = rs.start_next();
        let finished: Vec<TaskState> = (0..needs.len()).map(|i| rs.state(i)).collect();
        let (mut resumed, _) = RunState::restore(&plan, &finished);
        let mut reran = Vec::new();
        while let Some(t) = resumed.start_next() {
            reran.push(t);
            if fails[t] { resumed.fail(&plan, t); } else { resumed.succeed(&plan, t); }
        }
        prop_assert!(resumed.is_finished());
        for (t, before) in finished.iter().enumerate() {
            prop_assert_eq!(resumed.state(t), whole.state(t), "task {}", t);
            if matches!(before, TaskState::Succeeded | TaskState::Failed | TaskState::Skipped) {
                prop_assert!(!reran.contains(&t), "finished task {} ran again", t);
            }
        }
    }
}

proptest! {
    /// `downstream` is the fixpoint of "needs something marked", whatever the file order.
    #[test]
    fn downstream_is_every_task_that_needs_the_task_directly_or_not(
        needs in dag(),
        pick in any::<proptest::sample::Index>(),
        reverse in any::<bool>(),
    ) {
        // Reversing the file order makes the needs point forward as well as backward.
        let needs: Vec<Vec<usize>> = if reverse {
            let n = needs.len();
            needs.iter().rev().map(|ns| ns.iter().map(|&x| n - 1 - x).collect()).collect()
        } else {
            needs
        };
        let plan = Plan::new(needs.clone(), vec![0; needs.len()]);
        let i = pick.index(needs.len());
        let mut marked = vec![false; needs.len()];
        marked[i] = true;
        let mut changed = true;
        while changed {
            changed = false;
            for (t, ns) in needs.iter().enumerate() {
                if !marked[t] && ns.iter().any(|&n| marked[n]) {
                    marked[t] = true;
                    changed = true;
                }
            }
        }
        let expected: Vec<usize> = (0..needs.len()).filter(|&t| marked[t]).collect();
        prop_assert_eq!(plan.downstream(i), expected);
    }
}

proptest! {
    /// Layers are the longest path to each task, whatever order the file lists the tasks in:
    /// checked against the recursive definition on a DAG whose tasks are shuffled.
    #[test]
    fn a_layer_is_one_more_than_the_deepest_need(needs in dag(), seed in any::<u64>()) {
        let n = needs.len();
        // A permutation of the task indices from the seed (Fisher-Yates with a tiny LCG).
        let mut order: Vec<usize> = (0..n).collect();
        let mut x = seed | 1;
        for i in (1..n).rev() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            order.swap(i, (x >> 33) as usize % (i + 1));
        }
        let mut shuffled = vec![Vec::new(); n];
        for (i, ns) in needs.iter().enumerate() {
            shuffled[order[i]] = ns.iter().map(|&d| order[d]).collect();
        }
        let plan = Plan::new(shuffled.clone(), vec![0; n]);
        let layers = plan.layers();
        fn depth(i: usize, needs: &[Vec<usize>], memo: &mut Vec<Option<usize>>) -> usize {
            if let Some(d) = memo[i] {
                return d;
            }
            let d = needs[i].iter().map(|&j| depth(j, needs, memo) + 1).max().unwrap_or(0);
            memo[i] = Some(d);
            d
        }
        let mut memo = vec![None; n];
        for (i, &layer) in layers.iter().enumerate() {
            prop_assert_eq!(layer, depth(i, &shuffled, &mut memo), "task {}", i);
        }
    }
}

//! Graph algorithms over the `needs` relation, with petgraph: cycle finding.

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{HashMap, VecDeque};

fn graph<'a>(needs: impl Iterator<Item = &'a [usize]>) -> DiGraph<(), ()> {
    let mut g = DiGraph::new();
    let needs: Vec<&[usize]> = needs.collect();
    let nodes: Vec<NodeIndex> = (0..needs.len()).map(|_| g.add_node(())).collect();
    for (task, ns) in needs.iter().enumerate() {
        for &n in *ns {
            g.add_edge(nodes[task], nodes[n], ());
        }
    }
    g
}

/// Every dependency cycle, one per strongly connected component, each as the list of tasks where
/// each needs the next (and the last needs the first), starting from its first task in file order.
/// Self-loops are not reported here (validation reports them on their own).
pub fn find_cycles<'a>(needs: impl Iterator<Item = &'a [usize]>) -> Vec<Vec<usize>> {
    let g = graph(needs);
    let mut cycles = Vec::new();
    for scc in tarjan_scc(&g) {
        if scc.len() < 2 {
            continue;
        }
        let members: std::collections::HashSet<NodeIndex> = scc.iter().copied().collect();
        let Some(&start) = scc.iter().min() else {
            continue;
        };
        // Shortest path from `start` back to itself inside the component (BFS).
        let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        'bfs: while let Some(n) = queue.pop_front() {
            let mut next: Vec<NodeIndex> = g.neighbors(n).filter(|m| members.contains(m)).collect();
            next.sort();
            for m in next {
                if m == start {
                    parent.insert(start, n);
                    break 'bfs;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(m) {
                    e.insert(n);
                    queue.push_back(m);
                }
            }
        }
        let mut path = vec![];
        let mut at = parent.get(&start).copied();
        while let Some(n) = at {
            if n == start {
                break;
            }
            path.push(n.index());
            at = parent.get(&n).copied();
        }
        path.push(start.index());
        path.reverse();
        cycles.push(path);
    }
    cycles.sort();
    cycles
}

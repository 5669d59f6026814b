//! `bulkhead graph`: a workflow's dependency graph as Graphviz dot or a Mermaid flowchart.

use bulkhead::workflow::Workflow;

/// Output formats of `bulkhead graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Graphviz dot.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
}

/// Renders a workflow's graph; edges point from a dependency to the task that needs it.
pub fn render(workflow: &Workflow, format: GraphFormat) -> String {
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = String::new();
    match format {
        GraphFormat::Dot => {
            out.push_str(&format!(
                "digraph \"{}\" {{\n  rankdir=LR;\n",
                quote(&workflow.name)
            ));
            for t in &workflow.tasks {
                out.push_str(&format!(
                    "  \"{}\" [label=\"{}\\n({})\"];\n",
                    quote(&t.id),
                    quote(&t.id),
                    quote(&t.plugin.to_string())
                ));
            }
            for t in &workflow.tasks {
                for &n in &t.needs {
                    out.push_str(&format!(
                        "  \"{}\" -> \"{}\";\n",
                        quote(&workflow.tasks[n].id),
                        quote(&t.id)
                    ));
                }
            }
            out.push_str("}\n");
        }
        GraphFormat::Mermaid => {
            out.push_str("flowchart LR\n");
            for (i, t) in workflow.tasks.iter().enumerate() {
                out.push_str(&format!(
                    "  t{i}[\"{} ({})\"]\n",
                    t.id.replace('"', "#quot;"),
                    t.plugin
                ));
            }
            for (i, t) in workflow.tasks.iter().enumerate() {
                for &n in &t.needs {
                    out.push_str(&format!("  t{n} --> t{i}\n"));
                }
            }
        }
    }
    out
}

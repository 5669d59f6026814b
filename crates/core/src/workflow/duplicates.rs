//! Keys written twice in one mapping, anywhere in a workflow file. YAML parsers (serde_yaml
//! included) let the last one win without a word, so two tasks with one id, or a `timeout`
//! given twice, would silently lose one definition. This reads the file's event stream once,
//! with positions, and reports each duplicate with both lines.

use super::error::Problem;
use std::collections::HashMap;
use yaml_rust2::parser::{Event, Parser};

/// One open mapping or sequence.
struct Frame {
    /// The dotted path of the node (`tasks.clean.retry`, `defaults`, `tasks.a.needs[1]`).
    path: String,
    /// A mapping (else a sequence).
    map: bool,
    /// In a mapping: whether the next node is a key.
    expect_key: bool,
    /// In a mapping: the keys seen, with the line of each.
    keys: HashMap<String, usize>,
    /// In a mapping: the last key.
    key: String,
    /// In a sequence: the index of the next item.
    index: usize,
}

impl Frame {
    fn new(path: String, map: bool) -> Frame {
        Frame {
            path,
            map,
            expect_key: true,
            keys: HashMap::new(),
            key: String::new(),
            index: 0,
        }
    }

    /// The path of the node that comes next in this frame.
    fn child(&self) -> String {
        let join = |p: &str, k: &str| match p.is_empty() {
            true => k.to_string(),
            false => format!("{p}.{k}"),
        };
        match (self.map, self.expect_key) {
            (true, true) => join(&self.path, "<key>"),
            (true, false) => join(&self.path, &self.key),
            (false, _) => format!("{}[{}]", self.path, self.index),
        }
    }

    /// A node of this frame ended.
    fn advance(&mut self) {
        if self.map {
            self.expect_key = !self.expect_key;
        } else {
            self.index += 1;
        }
    }
}

/// Every duplicate key of `text`, in file order. A file that does not parse has none here
/// (the YAML error is reported by the parser that reads it).
pub(super) fn duplicate_keys(text: &str) -> Vec<Problem> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut problems = Vec::new();
    loop {
        let Ok((event, mark)) = parser.next_token() else {
            return problems;
        };
        match event {
            Event::StreamEnd => return problems,
            Event::Scalar(value, ..) => match stack.last_mut() {
                Some(top) if top.map && top.expect_key => {
                    if let Some(&first) = top.keys.get(&value) {
                        problems.push(duplicate(
                            &top.path,
                            &value,
                            first,
                            mark.line(),
                            mark.col() + 1,
                        ));
                    } else {
                        top.keys.insert(value.clone(), mark.line());
                    }
                    top.key = value;
                    top.expect_key = false;
                }
                Some(top) => top.advance(),
                None => {}
            },
            Event::Alias(_) => {
                if let Some(top) = stack.last_mut() {
                    top.advance();
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = stack.last().map(Frame::child).unwrap_or_default();
                stack.push(Frame::new(path, matches!(event, Event::MappingStart(..))));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                if let Some(top) = stack.last_mut() {
                    top.advance();
                }
            }
            Event::Nothing | Event::StreamStart | Event::DocumentStart | Event::DocumentEnd => {}
        }
    }
}

fn duplicate(path: &str, key: &str, first: usize, line: usize, col: usize) -> Problem {
    let full = match path {
        "" => key.to_string(),
        p => format!("{p}.{key}"),
    };
    let (task, field) = match full.strip_prefix("tasks.") {
        Some(rest) => match rest.split_once('.') {
            Some((t, f)) => (Some(t.to_string()), Some(f.to_string())),
            None => (Some(rest.to_string()), None),
        },
        None => (None, Some(full.clone())),
    };
    let what = match (path, &field) {
        ("tasks", None) => format!("task `{key}` is defined twice (lines {first} and {line})"),
        _ => format!("key `{key}` is given twice (lines {first} and {line})"),
    };
    let mut p = Problem::new(task.as_deref(), field.as_deref(), what)
        .hint("remove one of them or rename it; YAML would otherwise keep only the last silently");
    p.location = Some((line, col));
    p
}

#[cfg(test)]
mod tests {
    use super::duplicate_keys;

    #[test]
    fn finds_duplicate_tasks_and_fields_with_both_lines() {
        let text = "name: x\ntasks:\n  a: {plugin: p}\n  b:\n    plugin: p\n    limits: {timeout: 1s, timeout: 2s}\n  a: {plugin: q}\n";
        let found = duplicate_keys(text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].task.as_deref(), Some("b"));
        assert_eq!(found[0].field.as_deref(), Some("limits.timeout"));
        assert!(
            found[0].message.contains("lines 6 and 6"),
            "{}",
            found[0].message
        );
        assert_eq!(found[1].task.as_deref(), Some("a"));
        assert_eq!(found[1].field, None);
        assert!(found[1]
            .message
            .contains("task `a` is defined twice (lines 3 and 7)"));
        assert_eq!(found[1].location, Some((7, 3)));
    }

    #[test]
    fn same_keys_in_different_mappings_are_fine() {
        let text = "name: x\ntasks:\n  a: {plugin: p, params: {plugin: 1}}\n  b: {plugin: p, needs: [a, a]}\nplugin: top\n";
        assert!(duplicate_keys(text).is_empty());
    }

    #[test]
    fn keys_inside_sequences_are_scoped_to_their_item() {
        let text = "tasks:\n  a:\n    mounts:\n      - {host: x, guest: /x}\n      - {host: y, guest: /y, host: z}\n";
        let found = duplicate_keys(text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].field.as_deref(), Some("mounts[1].host"));
    }

    #[test]
    fn broken_yaml_reports_nothing_here() {
        assert!(duplicate_keys("tasks: [a, b\n  c: {").is_empty());
    }
}

//! The plugin folder: finds plugins by name (`<name>.wasm`) or by path, and loads each plugin a
//! workflow uses once. Dropping a `.wasm` file into the folder is all it takes to add a plugin.

use bulkhead_core::suggest::did_you_mean;
use bulkhead_core::workflow::{PluginRef, Problem, Workflow, WorkflowError};
use bulkhead_sandbox::{Abi, LoadError, Plugin, Sandbox};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A folder of `.wasm` plugins.
#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
}

/// One `.wasm` file of the folder.
#[derive(Debug, Clone)]
pub struct PluginFile {
    /// The plugin name (file stem).
    pub name: String,
    /// The file.
    pub path: PathBuf,
}

impl Registry {
    /// The registry of folder `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Registry { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every `.wasm` file of the folder, by name.
    pub fn list(&self) -> std::io::Result<Vec<PluginFile>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
                if let Some(name) = path.file_stem().and_then(|s| s.to_str()) {
                    out.push(PluginFile {
                        name: name.to_string(),
                        path: path.clone(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The name a plugin reference gives its plugin: the name, or the file stem of a path.
    pub fn name_of(plugin: &PluginRef) -> String {
        match plugin {
            PluginRef::Name(n) => n.clone(),
            PluginRef::Path(p) => p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("plugin")
                .to_string(),
        }
    }

    /// The file a task's plugin reference points at, or what is wrong with it.
    pub fn resolve(&self, plugin: &PluginRef) -> Result<PluginFile, String> {
        match plugin {
            PluginRef::Path(path) => {
                if path.is_file() {
                    let name = path
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or("plugin")
                        .to_string();
                    Ok(PluginFile {
                        name,
                        path: path.clone(),
                    })
                } else {
                    Err(format!(
                        "plugin file {} does not exist (paths are relative to the workflow file)",
                        path.display()
                    ))
                }
            }
            PluginRef::Name(name) => {
                let path = self.dir.join(format!("{name}.wasm"));
                if path.is_file() {
                    return Ok(PluginFile {
                        name: name.clone(),
                        path,
                    });
                }
                match self.list() {
                    Err(e) => Err(format!(
                        "unknown plugin `{name}`: cannot read the plugin folder {} ({e}); pass `--plugins DIR` or set BULKHEAD_PLUGINS",
                        self.dir.display()
                    )),
                    Ok(files) => {
                        let hint = did_you_mean(name, files.iter().map(|f| f.name.as_str()));
                        Err(format!(
                            "unknown plugin `{name}`{hint}: there is no {} (plugins found: {})",
                            path.display(),
                            if files.is_empty() { "none".to_string() } else { files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ") }
                        ))
                    }
                }
            }
        }
    }

    /// Loads one plugin file.
    pub fn load(&self, sandbox: &Sandbox, file: &PluginFile) -> Result<Plugin, LoadError> {
        use bulkhead_sandbox::compile::{read_module, ReadError};
        let bytes = read_module(&file.path, sandbox.compile_bounds()).map_err(|e| LoadError {
            plugin: file.name.clone(),
            message: match e {
                ReadError::Io(e) => format!("cannot read {}: {e}", file.path.display()),
                ReadError::TooBig(m) => m,
            },
        })?;
        sandbox.load(&file.name, &bytes)
    }

    /// Loads every plugin the workflow uses from the plugin folder, once each; returns them (and
    /// their files) by task index. Unknown or broken plugins are reported as problems of the
    /// tasks that use them.
    pub fn load_for(
        &self,
        sandbox: &Sandbox,
        workflow: &Workflow,
    ) -> Result<Vec<(Arc<Plugin>, PathBuf)>, WorkflowError> {
        self.load_with(sandbox, workflow, |r| self.resolve(r))
    }

    /// Like [`Registry::load_for`], with `resolve` deciding which file each reference means
    /// (a resumed run loads the exact copies it started with).
    pub fn load_with(
        &self,
        sandbox: &Sandbox,
        workflow: &Workflow,
        resolve: impl Fn(&PluginRef) -> Result<PluginFile, String>,
    ) -> Result<Vec<(Arc<Plugin>, PathBuf)>, WorkflowError> {
        let mut loaded: HashMap<&PluginRef, Result<(Arc<Plugin>, PathBuf), String>> =
            HashMap::new();
        let mut problems = Vec::new();
        let mut out = Vec::with_capacity(workflow.tasks.len());
        for task in &workflow.tasks {
            let result = loaded.entry(&task.plugin).or_insert_with(|| {
                let file = resolve(&task.plugin)?;
                let plugin = self.load(sandbox, &file).map_err(|e| e.to_string())?;
                Ok((Arc::new(plugin), file.path))
            });
            match result {
                Ok(p) if task.grants.http.is_some() && p.0.abi() == Abi::V1 => problems.push(
                    Problem::new(
                        Some(&task.id),
                        Some("http"),
                        format!(
                            "plugin `{}` is a WASI command (ABI v1), which has no way to make HTTP requests",
                            p.0.name
                        ),
                    )
                    .hint("build the plugin as a component (ABI v2, `wasm32-wasip2`) to use `http:`, or remove `http:`"),
                ),
                Ok(p) => out.push(p.clone()),
                Err(message) => problems.push(
                    Problem::new(Some(&task.id), Some("plugin"), message.clone())
                        .hint("build the plugin for `wasm32-wasip1` and put `<name>.wasm` in the plugin folder"),
                ),
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(WorkflowError::Invalid {
                file: workflow.file.clone(),
                problems,
            })
        }
    }
}

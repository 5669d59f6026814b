//! The definitions a server serves: every workflow of the workflow folder and every plugin of the
//! plugin folder, reloaded when files change. A file that breaks is reported and the last good
//! version stays active; a file that is removed takes its workflow away.

use crate::metrics::{Metrics, What};
use bulkhead_host::{Host, Loaded};
use bulkhead_sandbox::compile::{read_module, ReadError};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A workflow file as last seen.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct FileStatus {
    /// The file.
    #[schema(value_type = String)]
    pub file: PathBuf,
    /// The workflow it defines (the last good version, if it is broken now).
    pub workflow: Option<String>,
    /// Why its last version could not be loaded.
    pub error: Option<String>,
    #[serde(skip)]
    hash: String,
}

/// A plugin file as last seen.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PluginStatus {
    /// Its name.
    pub name: String,
    /// SHA-256 of its bytes (empty for a file over the module size bound, which is not read).
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
    /// Why it does not load, if it does not.
    pub error: Option<String>,
    /// `v1` (a WASI preview 1 command) or `v2` (a component); null when it does not load.
    pub abi: Option<String>,
    /// What it imports: `module::name` (v1) or interface names (v2); empty when it does not
    /// load.
    pub imports: Vec<String>,
}

/// The active definitions.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    /// Active workflows by name.
    pub workflows: BTreeMap<String, Arc<Loaded>>,
    /// Workflow files by path.
    pub files: BTreeMap<PathBuf, FileStatus>,
    /// Plugins by name.
    pub plugins: BTreeMap<String, PluginStatus>,
    /// Modification time and size of every file as last read: a file whose stamp did not change
    /// is not read again.
    stamps: BTreeMap<PathBuf, (std::time::SystemTime, u64)>,
}

/// The modification time and size of a file; `None` (read it) when it was modified in the
/// last two seconds, since a file system with coarse times could hide a second write then.
fn stamp(path: &Path) -> Option<(std::time::SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    let modified = meta.modified().ok()?;
    let settled = modified
        .elapsed()
        .is_ok_and(|age| age > std::time::Duration::from_secs(2));
    settled.then_some((modified, meta.len()))
}

fn is_workflow_file(p: &Path) -> bool {
    p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

impl Catalog {
    /// Brings the catalog up to date with the folders. Returns whether anything changed.
    pub fn refresh(&mut self, host: &Host, workflows_dir: &Path, metrics: &Metrics) -> bool {
        let plugins_changed = self.refresh_plugins(host, metrics);
        let mut changed = plugins_changed;
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(workflows_dir)
            .and_then(|entries| entries.collect::<std::io::Result<Vec<_>>>())
        {
            Ok(entries) => entries
                .into_iter()
                .map(|e| e.path())
                .filter(|p| is_workflow_file(p))
                .collect(),
            Err(e) => {
                // Out of file descriptors, say: keep every workflow loaded and try again later.
                tracing::error!(dir = %workflows_dir.display(), error = %e, "cannot read the workflow folder; keeping the loaded workflows");
                return plugins_changed;
            }
        };
        paths.sort();
        // Files that are gone take their workflow with them.
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| !paths.contains(p))
            .cloned()
            .collect();
        for p in gone {
            if let Some(FileStatus {
                workflow: Some(name),
                ..
            }) = self.files.remove(&p)
            {
                tracing::info!(file = %p.display(), workflow = %name, "workflow file removed");
                self.workflows.remove(&name);
                changed = true;
            }
        }
        for path in paths {
            let now = stamp(&path);
            if !plugins_changed && now.is_some() && self.stamps.get(&path) == now.as_ref() {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            if let Some(now) = now {
                self.stamps.insert(path.clone(), now);
            }
            let hash = hex::encode(Sha256::digest(text.as_bytes()));
            let known = self.files.get(&path);
            if !plugins_changed && known.is_some_and(|f| f.hash == hash) {
                continue;
            }
            changed = true;
            let previous = known.and_then(|f| f.workflow.clone());
            let status = match bulkhead_core::workflow::parse(&text, &path)
                .map_err(|e| e.to_string())
                .and_then(|wf| {
                    let taken = self
                        .files
                        .iter()
                        .any(|(p, f)| p != &path && f.workflow.as_deref() == Some(&wf.name));
                    if taken {
                        return Err(format!(
                            "workflow name `{}` is already used by another file",
                            wf.name
                        ));
                    }
                    host.prepare(wf, text.clone()).map_err(|e| e.to_string())
                }) {
                Ok(loaded) => {
                    let name = loaded.workflow.name.clone();
                    if let Some(old) = previous.filter(|old| old != &name) {
                        self.workflows.remove(&old);
                    }
                    tracing::info!(file = %path.display(), workflow = %name, "workflow loaded");
                    self.workflows.insert(name.clone(), Arc::new(loaded));
                    FileStatus {
                        file: path.clone(),
                        workflow: Some(name),
                        error: None,
                        hash,
                    }
                }
                Err(error) => {
                    tracing::error!(file = %path.display(), %error, "workflow not loaded; the last good version stays active");
                    FileStatus {
                        file: path.clone(),
                        workflow: previous,
                        error: Some(error),
                        hash,
                    }
                }
            };
            self.files.insert(path, status);
        }
        let broken = self.files.values().filter(|f| f.error.is_some()).count() as i64;
        metrics
            .load_errors
            .get_or_create(&What {
                what: "workflow".into(),
            })
            .set(broken);
        changed
    }

    fn refresh_plugins(&mut self, host: &Host, metrics: &Metrics) -> bool {
        let files = match host.registry().list() {
            Ok(files) => files,
            Err(e) => {
                tracing::error!(dir = %host.registry().dir().display(), error = %e, "cannot read the plugin folder; keeping the loaded plugins");
                return false;
            }
        };
        let mut next = BTreeMap::new();
        let mut changed = files.len() != self.plugins.len();
        for f in files {
            let now = stamp(&f.path);
            if let Some(known) = self.plugins.get(&f.name) {
                if now.is_some() && self.stamps.get(&f.path) == now.as_ref() {
                    next.insert(f.name.clone(), known.clone());
                    continue;
                }
            }
            let bytes = match read_module(&f.path, host.sandbox().compile_bounds()) {
                Ok(b) => b,
                Err(ReadError::TooBig(message)) => {
                    // Never read, so it has no hash to show; it is broken until it shrinks.
                    changed = true;
                    tracing::error!(plugin = %f.name, error = %message, "plugin does not load; workflows keep their last good version");
                    if let Some(now) = now {
                        self.stamps.insert(f.path.clone(), now);
                    }
                    let size = std::fs::metadata(&f.path).map_or(0, |m| m.len());
                    next.insert(
                        f.name.clone(),
                        PluginStatus {
                            name: f.name,
                            hash: String::new(),
                            size,
                            error: Some(message),
                            abi: None,
                            imports: Vec::new(),
                        },
                    );
                    continue;
                }
                Err(ReadError::Io(_)) => {
                    // Unreadable for now: keep what was loaded.
                    if let Some(known) = self.plugins.get(&f.name) {
                        next.insert(f.name.clone(), known.clone());
                    }
                    continue;
                }
            };
            if let Some(now) = now {
                self.stamps.insert(f.path.clone(), now);
            }
            let hash = hex::encode(Sha256::digest(&bytes));
            if let Some(known) = self.plugins.get(&f.name).filter(|p| p.hash == hash) {
                next.insert(f.name.clone(), known.clone());
                continue;
            }
            changed = true;
            let (error, abi, imports) = match host.sandbox().load(&f.name, &bytes) {
                Ok(p) => {
                    metrics.plugin_loaded(&p);
                    tracing::info!(plugin = %f.name, hash = %hash, cached = p.from_cache, "plugin loaded");
                    let abi = match p.abi() {
                        bulkhead_sandbox::Abi::V1 => "v1",
                        bulkhead_sandbox::Abi::V2 => "v2",
                    };
                    (None, Some(abi.to_string()), p.imports.clone())
                }
                Err(e) => {
                    tracing::error!(plugin = %f.name, error = %e.message, "plugin does not load; workflows keep their last good version");
                    (Some(e.message), None, Vec::new())
                }
            };
            let size = bytes.len() as u64;
            next.insert(
                f.name.clone(),
                PluginStatus {
                    name: f.name,
                    hash,
                    size,
                    error,
                    abi,
                    imports,
                },
            );
        }
        let broken = next.values().filter(|p| p.error.is_some()).count() as i64;
        metrics
            .load_errors
            .get_or_create(&What {
                what: "plugin".into(),
            })
            .set(broken);
        self.plugins = next;
        changed
    }
}

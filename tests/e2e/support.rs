//! Shared helpers: build the test plugins once, write workflows into temp folders, run the binary.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The folder of compiled test plugins, built on first use.
pub fn test_plugins() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let status = Command::new("bash")
            .arg(root().join("scripts/build-plugins.sh"))
            .status()
            .expect("run scripts/build-plugins.sh");
        assert!(status.success(), "building the test plugins failed");
        root().join("target/test-plugins")
    })
}

/// A temp folder holding one workflow.
pub struct Case {
    pub dir: tempfile::TempDir,
    /// A store other than the case's own SQLite file (a PostgreSQL URL).
    pub store_url: Option<String>,
}

impl Case {
    /// A case whose workflow file `wf.yaml` holds `yaml`.
    pub fn new(yaml: &str) -> Case {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("wf.yaml"), yaml).expect("write workflow");
        Case {
            dir,
            store_url: None,
        }
    }

    pub fn file(&self) -> PathBuf {
        self.dir.path().join("wf.yaml")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The binary, recording runs in this case's own state store.
    pub fn bulkhead(&self) -> Command {
        let mut cmd = bulkhead();
        match &self.store_url {
            Some(url) => cmd.env("BULKHEAD_STORE", url),
            None => cmd.env("BULKHEAD_STORE", self.store()),
        };
        cmd
    }

    /// This case's state store.
    pub fn store(&self) -> PathBuf {
        self.dir.path().join("state.db")
    }

    /// `bulkhead run wf.yaml --json <extra>`: exit code, report, stderr.
    pub fn run(&self, extra: &[&str]) -> Ran {
        let mut cmd = self.bulkhead();
        cmd.arg("run").arg(self.file()).arg("--json").args(extra);
        Ran::from(cmd.output().expect("run bulkhead"))
    }
}

/// The binary with the test plugin folder, a shared compile cache, and no stray settings.
pub fn bulkhead() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulkhead"));
    for (k, _) in std::env::vars() {
        if k.starts_with("BULKHEAD_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("BULKHEAD_PLUGINS", test_plugins())
        .env("BULKHEAD_CACHE_DIR", root().join("target/e2e-cache"))
        .env("BULKHEAD_STORE", ":memory:");
    cmd
}

/// The result of a run.
pub struct Ran {
    pub code: i32,
    pub report: Value,
    pub stderr: String,
}

impl From<Output> for Ran {
    fn from(out: Output) -> Ran {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let report = if stdout.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&stdout).unwrap_or_else(|e| {
                panic!("stdout is not one JSON document ({e}):\n{stdout}\nstderr:\n{stderr}")
            })
        };
        Ran {
            code: out.status.code().unwrap_or(-1),
            report,
            stderr,
        }
    }
}

impl Ran {
    pub fn task(&self, id: &str) -> &Value {
        &self.report["tasks"][id]
    }

    /// `(status, error kind)` of a task.
    pub fn ended(&self, id: &str) -> (String, String) {
        let t = self.task(id);
        (
            t["status"].as_str().unwrap_or("?").to_string(),
            t["error"]["kind"].as_str().unwrap_or("").to_string(),
        )
    }

    pub fn message(&self, id: &str) -> String {
        self.task(id)["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

/// Waits until the state store `store` has a run whose task `task` has started an attempt;
/// returns the run id. For tests that stop a host while an attempt runs.
pub fn wait_for_attempt(store: &Path, task: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let list = bulkhead()
            .env("BULKHEAD_STORE", store)
            .args(["runs", "--json"])
            .output()
            .expect("runs");
        let runs: Value = serde_json::from_slice(&list.stdout).unwrap_or(Value::Null);
        if let Some(id) = runs[0]["run_id"].as_str() {
            let show = bulkhead()
                .env("BULKHEAD_STORE", store)
                .args(["show", "--json", id])
                .output()
                .expect("show");
            let report: Value = serde_json::from_slice(&show.stdout).unwrap_or(Value::Null);
            if report["tasks"][task]["history"]
                .as_array()
                .is_some_and(|h| !h.is_empty())
            {
                return id.to_string();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "task {task} never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(30));
    }
}

/// Assembles WebAssembly text (a module or a component) into `out`, with tools/wat2wasm.
pub fn wat2wasm(text: &str, out: &Path) {
    test_plugins(); // builds the tool too
    let wat = out.with_extension("wat");
    std::fs::write(&wat, text).expect("write wat");
    let status = Command::new(root().join("target/tools/release/wat2wasm"))
        .arg(&wat)
        .arg(out)
        .status()
        .expect("tools/wat2wasm, built by scripts/build-plugins.sh");
    assert!(status.success(), "wat2wasm {}", wat.display());
    std::fs::remove_file(&wat).expect("remove wat");
}

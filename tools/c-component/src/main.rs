//! Build helper for C components (scripts/build-languages.sh):
//!
//! - `c-component bindings WIT_DIR WORLD OUT_DIR` writes wit-bindgen's C bindings of `WORLD`
//!   (`<world>.h`, `<world>.c` and `<world>_component_type.o`) into `OUT_DIR`;
//! - `c-component new CORE.wasm OUT.wasm` turns a WASI preview 1 reactor module that links
//!   those bindings into a component, its WASI calls adapted to WASI 0.2 by wasmtime's
//!   preview 1 adapter.

use anyhow::{bail, Context, Result};
use std::path::Path;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["bindings", wit, world, out] => bindings(Path::new(wit), world, Path::new(out)),
        ["new", core, out] => component(Path::new(core), Path::new(out)),
        _ => bail!("usage: c-component bindings WIT_DIR WORLD OUT_DIR | c-component new CORE.wasm OUT.wasm"),
    }
}

fn bindings(wit: &Path, world: &str, out: &Path) -> Result<()> {
    let mut resolve = wit_bindgen_core::wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_path(wit)
        .with_context(|| format!("reading the WIT package in {}", wit.display()))?;
    let world = resolve.select_world(&[package], Some(world))?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, contents) in files.iter() {
        let path = out.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn component(core: &Path, out: &Path) -> Result<()> {
    use wasi_preview1_component_adapter_provider as adapter;
    let module = std::fs::read(core).with_context(|| format!("reading {}", core.display()))?;
    let bytes = wit_component::ComponentEncoder::default()
        .module(&module)
        .with_context(|| {
            format!(
                "{} carries no component type (link the bindings' object)",
                core.display()
            )
        })?
        .adapter(
            adapter::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            adapter::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .validate(true)
        .encode()
        .with_context(|| format!("making a component of {}", core.display()))?;
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))
}

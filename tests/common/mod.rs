//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The default model, fetched into the cache on first use (the test command fetches it up front).
pub fn default_model() -> PathBuf {
    match wisp::fetch::default_model() {
        Ok(p) => p,
        Err(e) => panic!("the default model is needed for this test and could not be fetched: {e}"),
    }
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub fn read_json(name: &str) -> serde_json::Value {
    let p = fixture(name);
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().expect("id array").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}

/// Loads the default model once per test binary.
pub fn engine(ctx: usize) -> wisp::Engine {
    let src = wisp::weights::GgufSource::open(&default_model()).expect("default model loads");
    wisp::Engine::from_gguf(src, ctx).expect("engine builds")
}

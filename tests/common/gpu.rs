//! Opening the GPU for a test. Without `WISP_REQUIRE_GPU=1` a missing adapter (or a device that
//! fails to open) skips the test with a loud `SKIPPED` line; with it — `make test` sets it, having
//! installed Mesa lavapipe — the same is a test failure naming the cause, so a green run means the
//! GPU tests ran. Included with `#[path = "common/gpu.rs"] mod gpu_env;` by each GPU test binary.
#![allow(dead_code)]

use wisp::gpu::Gpu;

/// Whether this run requires an adapter (`WISP_REQUIRE_GPU=1`).
pub fn required() -> bool {
    std::env::var("WISP_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// The default adapter's device, or `None` (skipped, printed) when there is none and the run does
/// not require one. Panics naming the cause when it does.
pub fn open() -> Option<Gpu> {
    match pollster::block_on(Gpu::new()) {
        Ok(g) => {
            eprintln!("adapter: {}", g.describe());
            Some(g)
        }
        Err(e) => skip(&e.to_string()),
    }
}

/// Whether a device opens (for tests that run the CLI with `--backend gpu`); same rules as [`open`].
pub fn available() -> bool {
    open().is_some()
}

fn skip<T>(why: &str) -> Option<T> {
    assert!(
        !required(),
        "WISP_REQUIRE_GPU=1 but the GPU test cannot run: {why}. `make test` needs a Vulkan adapter \
         (scripts/setup.sh --test installs Mesa lavapipe; check VK_ICD_FILENAMES and \
         /usr/share/vulkan/icd.d/lvp_icd.*.json)"
    );
    // straight to the stderr handle, not eprintln!: the test harness captures (and hides) the
    // macros' output of passing tests, and a skip must show
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED (no GPU adapter; WISP_REQUIRE_GPU=1 makes this a failure): {why}"
    );
    None
}

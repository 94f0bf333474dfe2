//! Long use of one engine (`wisp soak`): 1,000 generations on the CPU and 200 on the GPU (when an
//! adapter exists) of four kinds in turn, on a tiny generated model. Resident memory and the GPU's
//! buffer and bind-group counts are printed every 100 generations and must stay flat after the
//! first interval: nothing grows per generation or per token.

use std::process::Command;

#[path = "common/gpu.rs"]
mod gpu_env;

fn soak(args: &[&str]) -> Vec<serde_json::Value> {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/gguf_engine/llama_q4_1.gguf");
    let out = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args(["soak", "--model", model, "--every", "100", "--json", "--threads", "1"])
        .args(args)
        .output()
        .expect("wisp runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    eprint!("{stderr}{stdout}");
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
}

fn check_flat(lines: &[serde_json::Value], generations: u64, rss_bound_mb: f64) {
    let summary = lines.last().expect("summary line");
    assert_eq!(summary["generations"], generations);
    assert_eq!(lines.len() as u64, generations / 100 + 1, "a sample every 100 generations");
    assert!(summary["tokens"].as_u64().unwrap_or(0) >= generations, "{summary}");
    let rss = summary["rss_growth_mb"].as_f64().expect("rss growth");
    assert!(rss.abs() <= rss_bound_mb, "resident memory grew {rss:.2} MiB over the run: {lines:?}");
    assert_eq!(summary["gpu_buffer_growth"], 0.0, "GPU buffers created after load: {lines:?}");
    assert_eq!(summary["gpu_bind_group_growth"], 0.0, "bind groups created after load: {lines:?}");
}

#[test]
fn a_thousand_generations_on_the_cpu_keep_memory_flat() {
    let lines = soak(&["--generations", "1000", "--backend", "cpu"]);
    check_flat(&lines, 1000, 2.0);
    assert_eq!(lines.last().expect("summary")["backend"], "cpu");
}

#[test]
fn two_hundred_generations_on_the_gpu_create_no_buffers() {
    if !gpu_env::available() {
        return;
    }
    let lines = soak(&["--generations", "200", "--backend", "gpu"]);
    check_flat(&lines, 200, 8.0);
    let first = &lines[0];
    assert!(first["gpu_buffers"].as_u64().unwrap_or(0) > 10, "buffers counted: {first}");
    assert_eq!(lines.last().expect("summary")["backend"], "gpu");
}

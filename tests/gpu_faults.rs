//! A lost GPU device (here `device.destroy()`, as a driver reset or the browser would) surfaces
//! as a clear error on every later call, never a hang or a panic, and a new device works after it.
//! Skipped loudly when no adapter exists, a failure under `WISP_REQUIRE_GPU=1`.

use std::sync::Arc;
use wisp::gpu::{forward::GpuForward, Gpu};
use wisp::{Engine, GenerateOptions};

#[path = "common/gpu.rs"]
mod gpu_env;

fn engine_on(gpu: Arc<Gpu>) -> Engine {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/gguf_engine/llama_q4_1.gguf");
    let bytes = std::fs::read(path).expect("seed model");
    let mut e = Engine::from_gguf_bytes(&bytes, 64).expect("loads");
    let gf = pollster::block_on(GpuForward::new(gpu, &e.model, 64)).expect("GPU forward");
    e.use_gpu(gf).expect("attached");
    e
}

#[test]
fn a_lost_device_is_a_clear_error_and_a_new_one_works() {
    let Some(gpu) = gpu_env::open().map(Arc::new) else { return };
    let opts = GenerateOptions { max_tokens: 4, ignore_eog: true, ..Default::default() };
    let greedy = GenerateOptions { sampling: wisp::sampling::SamplingParams::greedy(), ..opts.clone() };
    let mut e = engine_on(gpu.clone());
    let prompt = e.encode("ab c").expect("encodes");
    let before = e.generate(&prompt, &greedy, &mut |_, _| true).expect("runs").ids;

    gpu.device.destroy();
    for (what, o) in [("greedy", &greedy), ("sampled", &opts)] {
        e.reset();
        let err = e.generate(&prompt, o, &mut |_, _| true).expect_err("a lost device fails").to_string();
        assert!(err.contains("GPU device was lost") && err.contains("load the model again"), "{what}: {err}");
    }

    let fresh = Arc::new(pollster::block_on(Gpu::new()).expect("a new device"));
    let mut e2 = engine_on(fresh);
    let after = e2.generate(&prompt, &greedy, &mut |_, _| true).expect("runs on the new device").ids;
    assert_eq!(after, before);
}

//! Traces one decode step on the native GPU dispatch by dispatch, for finding the kernel where
//! two adapters (or the page and the native build) part:
//!
//! ```text
//! cargo run --release --example trace_step -- MODEL.gguf 2,818,66673 OUT.json
//! ```
//!
//! evaluates the ids but the last from position 0 (context 4,096), then the last one's decode
//! step one dispatch at a time, and writes OUT.json (`names`: each dispatch's kernel, `widths`:
//! the traced buffers and their words) and OUT.json.bin (little-endian f32, per dispatch the
//! first row of each traced buffer). The page's engine has the same trace as
//! `WispEngine.traceStep(ids)`; with `VK_ICD_FILENAMES` pointing at Chromium's
//! `vk_swiftshader_icd.json` both run on SwiftShader, so any difference is the shader compiler's.

use std::io::Write;

fn main() {
    if let Err(e) = run() {
        eprintln!("trace_step: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, model, ids, out] = &args[..] else {
        return Err("usage: trace_step MODEL.gguf ID,ID,... OUT.json".into());
    };
    let ids: Vec<u32> = ids.split(',').map(str::parse).collect::<Result<_, _>>()?;
    let (&last, body) = ids.split_last().ok_or("no ids")?;
    let g = std::sync::Arc::new(pollster::block_on(wisp::gpu::Gpu::new())?);
    eprintln!("trace_step: {}", g.describe());
    let src = wisp::weights::GgufSource::open(std::path::Path::new(model))?;
    let mut e = wisp::Engine::from_gguf(src, 4096)?;
    let gf = pollster::block_on(wisp::gpu::forward::GpuForward::new(g, &e.model, 4096))?;
    e.use_gpu(gf)?;
    let gf = e.gpu().ok_or("no GPU forward")?;
    gf.prefill(body, 0)?;
    let (names, values) = pollster::block_on(gf.trace_step(last, body.len()))?;
    let j = serde_json::json!({ "names": names, "widths": gf.trace_widths() });
    std::fs::write(out, j.to_string())?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(format!("{out}.bin"))?);
    for v in values {
        f.write_all(&v.to_le_bytes())?;
    }
    Ok(())
}

//! Every WGSL kernel against the CPU path (the specification) on seeded inputs with awkward
//! shapes. Tolerances (`|gpu − cpu| ≤ atol + rtol·|cpu|`) are listed in shaders/README.md. With
//! no adapter they skip loudly, or fail under `WISP_REQUIRE_GPU=1` (as `make test` runs them).

use half::{bf16, f16};
use wisp::gpu::shaders;
use wisp::gpu::{Gpu, GpuMatrix};
use wisp::model::RopeStyle;
use wisp::quant::{vec_dot_f32_scalar, GgmlType};

#[path = "common/gpu.rs"]
mod gpu_env;

fn gpu() -> Option<Gpu> {
    gpu_env::open()
}

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

/// `rows × cols` weights of `ty` in the file's encoding, values of order 0.1.
fn weights(rng: &mut Rng, ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let n = rows * cols;
    match ty {
        GgmlType::F32 => (0..n).flat_map(|_| (0.1 * rng.f()).to_le_bytes()).collect(),
        GgmlType::F16 => (0..n).flat_map(|_| f16::from_f32(0.1 * rng.f()).to_le_bytes()).collect(),
        GgmlType::BF16 => (0..n).flat_map(|_| bf16::from_f32(0.1 * rng.f()).to_le_bytes()).collect(),
        _ => {
            let ts = ty.type_size();
            let mut data: Vec<u8> = (0..n / ty.block_size() * ts).map(|_| rng.next() as u8).collect();
            // d, then m or dmin where the type has one: values of a few units at most (Q6_K's and
            // Q5_K's quants and scales reach further, so their d is smaller)
            let d = match ty {
                GgmlType::Q6K => 0.001,
                GgmlType::Q5K => 0.005,
                _ => 0.01,
            };
            for b in data.chunks_exact_mut(ts) {
                let h = |v: f32| f16::from_f32(v).to_le_bytes();
                for (k, &o) in ty.half_offsets().iter().enumerate() {
                    let v = if k == 0 { d * (1.0 + rng.f()) } else { 0.05 * rng.f() };
                    b[o..o + 2].copy_from_slice(&h(v));
                }
            }
            data
        }
    }
}

/// Asserts `got ≈ want` element-wise, printing the worst element on failure.
fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let (mut worst, mut at) = (0.0f32, 0);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let excess = (g - w).abs() - (atol + rtol * w.abs());
        if excess > worst || excess.is_nan() {
            worst = excess;
            at = i;
        }
    }
    assert!(
        worst <= 0.0,
        "{what}: worst element {at}: gpu {} cpu {} (|diff| {} > {atol} + {rtol}·|cpu|)",
        got[at],
        want[at],
        (got[at] - want[at]).abs()
    );
}

/// Every type (`GgmlType::ALL`, in the order the tests first had, the newer types after).
const ALL_TYPES: [GgmlType; 14] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q8_0,
    GgmlType::Q4K,
    GgmlType::Q6K,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::IQ4NL,
    GgmlType::Q2K,
    GgmlType::Q3K,
    GgmlType::Q5K,
];

#[test]
fn the_tests_cover_every_type() {
    for ty in GgmlType::ALL {
        assert!(ALL_TYPES.contains(&ty), "{} is not tested", ty.name());
    }
}

const MATVEC_ATOL: f32 = 1e-5;
const MATVEC_RTOL: f32 = 1e-4;

#[test]
fn matvec_matches_cpu_for_every_type_and_awkward_shape() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(0x5EED_0001);
    let small = |bs: usize| if bs == 1 { vec![1, 33, 577] } else { vec![bs, 3 * bs, 18 * bs] };
    for ty in ALL_TYPES {
        let bs = if ty.is_quantized() { ty.block_size() } else { 1 };
        for cols in small(bs) {
            for rows in [1usize, 7, 130] {
                check_matvec(&g, &mut rng, ty, rows, cols);
            }
        }
    }
    // more workgroups than fit in one grid dimension (65,535 × 4 rows)
    check_matvec(&g, &mut rng, GgmlType::Q4_1, 300_001, 32);
    check_matvec(&g, &mut rng, GgmlType::F16, 270_000, 3);
}

fn check_matvec(g: &Gpu, rng: &mut Rng, ty: GgmlType, rows: usize, cols: usize) {
    let data = weights(rng, ty, rows, cols);
    let x: Vec<f32> = (0..cols).map(|_| rng.f()).collect();
    let rb = data.len() / rows;
    let want: Vec<f32> = (0..rows).map(|r| vec_dot_f32_scalar(ty, &data[r * rb..(r + 1) * rb], &x)).collect();
    let m = GpuMatrix::upload(g, "w", ty, rows, cols, &data).unwrap();
    let xb = g.storage_f32("x", &x).unwrap();
    let yb = g.storage("y", 4 * rows as u64, None).unwrap();
    pollster::block_on(g.matvec(&m, &xb, &yb)).unwrap();
    let got = pollster::block_on(g.read_f32(&yb, rows)).unwrap();
    assert_close(&format!("matvec {} {rows}x{cols}", ty.name()), &got, &want, MATVEC_ATOL, MATVEC_RTOL);
}

/// Random K-quant scales make rows with |W·x| up to ~100, whose f32 summation-order error
/// reaches ~2e-5 on elements near zero.
const MATMUL_ATOL: f32 = 1e-4;
const MATMUL_RTOL: f32 = 1e-4;

/// The prefill matrix product: every type, 1/odd/many weight rows (one partial tile of 64, three
/// tiles), widths of one block, of several and odd ones, batches of 1, 5 and 70 rows (a partial
/// tile of 64, two tiles), each batch row against the CPU's dot product.
#[test]
fn matmul_matches_cpu_for_every_type_and_awkward_shape() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(0x5EED_0008);
    let small = |bs: usize| if bs == 1 { vec![1, 33, 577] } else { vec![bs, 3 * bs] };
    for ty in ALL_TYPES {
        let bs = if ty.is_quantized() { ty.block_size() } else { 1 };
        for cols in small(bs) {
            for (rows, n) in [(1usize, 5usize), (7, 1), (130, 70)] {
                check_matmul(&g, &mut rng, ty, rows, cols, n);
            }
        }
    }
    // more weight-row groups than one grid dimension holds
    check_matmul(&g, &mut rng, GgmlType::Q4_1, 270_000, 32, 3);
}

fn check_matmul(g: &Gpu, rng: &mut Rng, ty: GgmlType, rows: usize, cols: usize, n: usize) {
    let data = weights(rng, ty, rows, cols);
    let x: Vec<f32> = (0..n * cols).map(|_| rng.f()).collect();
    let rb = data.len() / rows;
    let want: Vec<f32> = (0..n)
        .flat_map(|t| {
            let xt = &x[t * cols..(t + 1) * cols];
            (0..rows).map(|r| vec_dot_f32_scalar(ty, &data[r * rb..(r + 1) * rb], xt)).collect::<Vec<_>>()
        })
        .collect();
    let m = GpuMatrix::upload(g, "w", ty, rows, cols, &data).unwrap();
    let xb = g.storage_f32("x", &x).unwrap();
    let yb = g.storage("y", 4 * (n * rows) as u64, None).unwrap();
    let st = batch_state(g, 0, &vec![0; n]);
    pollster::block_on(g.matmul(&m, &xb, &yb, &st, n)).unwrap();
    let got = pollster::block_on(g.read_f32(&yb, n * rows)).unwrap();
    let what = format!("matmul {} {rows}x{cols}, {n} rows", ty.name());
    assert_close(&what, &got, &want, MATMUL_ATOL, MATMUL_RTOL);
}

/// The ACC variants (the residual add fused into a projection): `y += W·x`, decode and prefill,
/// with `y` holding random values beforehand, for every type (1 and 130 rows, odd widths).
#[test]
fn product_add_adds_into_y_for_every_type_decode_and_prefill() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(0x5EED_000A);
    for ty in ALL_TYPES {
        let bs = if ty.is_quantized() { ty.block_size() } else { 1 };
        for (rows, cols, n) in [(1usize, bs, 3usize), (130, if bs == 1 { 33 } else { 3 * bs }, 70)] {
            let data = weights(&mut rng, ty, rows, cols);
            let x: Vec<f32> = (0..n * cols).map(|_| rng.f()).collect();
            let y0: Vec<f32> = (0..n * rows).map(|_| 10.0 * rng.f()).collect();
            let rb = data.len() / rows;
            let want: Vec<f32> = (0..n * rows)
                .map(|i| {
                    let (t, r) = (i / rows, i % rows);
                    y0[i] + vec_dot_f32_scalar(ty, &data[r * rb..(r + 1) * rb], &x[t * cols..(t + 1) * cols])
                })
                .collect();
            let m = GpuMatrix::upload(&g, "w", ty, rows, cols, &data).unwrap();
            let what = format!("product_add {} {rows}x{cols}", ty.name());
            let (xb, yb) =
                (g.storage_f32("x", &x[..cols]).unwrap(), g.storage_f32("y", &y0[..rows]).unwrap());
            pollster::block_on(g.product_add(&m, &xb, &yb, None)).unwrap();
            let got = pollster::block_on(g.read_f32(&yb, rows)).unwrap();
            assert_close(&format!("{what}, decode"), &got, &want[..rows], MATMUL_ATOL, MATMUL_RTOL);
            let (xb, yb) = (g.storage_f32("x", &x).unwrap(), g.storage_f32("y", &y0).unwrap());
            let st = batch_state(&g, 0, &vec![0; n]);
            pollster::block_on(g.product_add(&m, &xb, &yb, Some((&st, n)))).unwrap();
            let got = pollster::block_on(g.read_f32(&yb, n * rows)).unwrap();
            assert_close(&format!("{what}, {n} rows"), &got, &want, MATMUL_ATOL, MATMUL_RTOL);
        }
    }
}

/// SwiGLU's stacked gate/up product (`GpuMatrix::stack`, the SWIGLU variants), decode and
/// prefill: silu(gate·x)·(up·x) for every type, against the CPU's dot products and silu, with 1,
/// 7 and 130 output rows (partial and several tiles of each kernel), widths of one block, of
/// several and odd ones, and batches of 1, 5 and 70 rows.
#[test]
fn swiglu_matches_cpu_for_every_type_decode_and_prefill() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(0x5EED_0009);
    for ty in ALL_TYPES {
        let bs = if ty.is_quantized() { ty.block_size() } else { 1 };
        let odd = if bs == 1 { 33 } else { 2 * bs };
        for (rows, cols, n) in [(1usize, bs, 1usize), (7, odd, 5), (130, 3 * bs, 70)] {
            check_swiglu(&g, &mut rng, ty, rows, cols, n);
        }
    }
}

fn check_swiglu(g: &Gpu, rng: &mut Rng, ty: GgmlType, rows: usize, cols: usize, n: usize) {
    let (gate, up) = (weights(rng, ty, rows, cols), weights(rng, ty, rows, cols));
    // activations scaled so random K-quant rows (whose random scales make |W·x| ~ 100) give gate
    // values of a few units, as a model's do: silu(g) = g·σ(g) turns g's f32 summation-order
    // error δg into a relative error of ~|g|·δg, beyond any f32 tolerance at |g| ~ 100
    let scale = if ty.block_size() == wisp::quant::QK_K { 0.05 } else { 1.0 };
    let x: Vec<f32> = (0..n * cols).map(|_| scale * rng.f()).collect();
    let rb = gate.len() / rows;
    let want: Vec<f32> = (0..n)
        .flat_map(|t| {
            let xt = &x[t * cols..(t + 1) * cols];
            let (gate, up) = (&gate, &up);
            (0..rows).map(move |r| {
                let gv = vec_dot_f32_scalar(ty, &gate[r * rb..(r + 1) * rb], xt);
                let uv = vec_dot_f32_scalar(ty, &up[r * rb..(r + 1) * rb], xt);
                gv / (1.0 + (-gv).exp()) * uv
            })
        })
        .collect();
    let gm = GpuMatrix::upload(g, "gate", ty, rows, cols, &gate).unwrap();
    let um = GpuMatrix::upload(g, "up", ty, rows, cols, &up).unwrap();
    let gu = GpuMatrix::stack(g, "gate/up", &[&gm, &um]).unwrap().expect("stacked");
    let what = format!("swiglu {} {rows}x{cols}", ty.name());
    // decode: the first batch row
    let (xb, yb) = (g.storage_f32("x", &x[..cols]).unwrap(), g.storage("y", 4 * rows as u64, None).unwrap());
    pollster::block_on(g.swiglu(&gu, &xb, &yb, None)).unwrap();
    let got = pollster::block_on(g.read_f32(&yb, rows)).unwrap();
    assert_close(&format!("{what}, decode"), &got, &want[..rows], MATMUL_ATOL, MATMUL_RTOL);
    // prefill: every batch row
    let (xb, yb) = (g.storage_f32("x", &x).unwrap(), g.storage("y", 4 * (n * rows) as u64, None).unwrap());
    let st = batch_state(g, 0, &vec![0; n]);
    pollster::block_on(g.swiglu(&gu, &xb, &yb, Some((&st, n)))).unwrap();
    let got = pollster::block_on(g.read_f32(&yb, n * rows)).unwrap();
    assert_close(&format!("{what}, {n} rows"), &got, &want, MATMUL_ATOL, MATMUL_RTOL);
}

/// Attention's stacked Q/K/V product split three ways (`GpuMatrix::stack` of three matrices, the
/// SPLIT variants), decode and prefill, with and without a bias: every type, output parts of 1
/// row each, of 7/3/5 rows (odd cuts inside a tile) and 64/33/33 (three tiles), and batches of
/// 1, 5 and 70 rows; each part must land in its own buffer at its own row length.
#[test]
fn split_product_matches_cpu_for_every_type_decode_and_prefill() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(0x5EED_000B);
    for ty in ALL_TYPES {
        let bs = if ty.is_quantized() { ty.block_size() } else { 1 };
        let odd = if bs == 1 { 33 } else { 2 * bs };
        for (parts, cols, n) in
            [([1usize, 1, 1], bs, 1usize), ([7, 3, 5], odd, 5), ([64, 33, 33], 3 * bs, 70)]
        {
            for with_bias in [false, true] {
                check_split(&g, &mut rng, ty, parts, cols, n, with_bias);
            }
        }
    }
}

fn check_split(
    g: &Gpu,
    rng: &mut Rng,
    ty: GgmlType,
    parts: [usize; 3],
    cols: usize,
    n: usize,
    with_bias: bool,
) {
    let mats: Vec<Vec<u8>> = parts.iter().map(|&rows| weights(rng, ty, rows, cols)).collect();
    let rows: usize = parts.iter().sum();
    let bias: Vec<f32> = (0..rows).map(|_| rng.f()).collect();
    let x: Vec<f32> = (0..n * cols).map(|_| rng.f()).collect();
    // want[part][t · parts[part] + r]
    let mut start = 0;
    let want: Vec<Vec<f32>> = parts
        .iter()
        .zip(&mats)
        .map(|(&pr, data)| {
            let rb = data.len() / pr;
            let out = (0..n * pr)
                .map(|i| {
                    let (t, r) = (i / pr, i % pr);
                    let b = if with_bias { bias[start + r] } else { 0.0 };
                    vec_dot_f32_scalar(ty, &data[r * rb..(r + 1) * rb], &x[t * cols..(t + 1) * cols]) + b
                })
                .collect();
            start += pr;
            out
        })
        .collect();
    let ms: Vec<GpuMatrix> =
        mats.iter().zip(parts).map(|(d, r)| GpuMatrix::upload(g, "part", ty, r, cols, d).unwrap()).collect();
    let qkv = GpuMatrix::stack(g, "qkv", &[&ms[0], &ms[1], &ms[2]]).unwrap().expect("stacked");
    let bb = g.storage_f32("bias", &bias).unwrap();
    let bias_buf = with_bias.then_some(&bb);
    let splits = [parts[0], parts[0] + parts[1]];
    let what = format!("split {} {parts:?}x{cols} bias {with_bias}", ty.name());
    for batch in [None, Some(n)] {
        let rows_of = batch.unwrap_or(1);
        let xb = g.storage_f32("x", &x[..rows_of * cols]).unwrap();
        let ys: Vec<wgpu::Buffer> =
            parts.iter().map(|&p| g.storage("y", 4 * (rows_of * p) as u64, None).unwrap()).collect();
        let st = batch_state(g, 0, &vec![0; rows_of]);
        let b = batch.map(|n| (&st, n));
        pollster::block_on(g.split_product(&qkv, bias_buf, &xb, [&ys[0], &ys[1], &ys[2]], splits, b))
            .unwrap();
        for (i, y) in ys.iter().enumerate() {
            let got = pollster::block_on(g.read_f32(y, rows_of * parts[i])).unwrap();
            let want = &want[i][..rows_of * parts[i]];
            assert_close(&format!("{what}, part {i}, {rows_of} rows"), &got, want, MATMUL_ATOL, MATMUL_RTOL);
        }
    }
}

const NORM_ATOL: f32 = 1e-5;
const NORM_RTOL: f32 = 1e-5;

#[test]
fn rms_norm_matches_cpu() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(0x5EED_0002);
    for (n, rows) in [(1usize, 1usize), (7, 3), (576, 5), (2049, 2)] {
        let x: Vec<f32> = (0..n * rows).map(|_| 3.0 * rng.f()).collect();
        let w: Vec<f32> = (0..n).map(|_| rng.f()).collect();
        let norm = wisp::model::Norm { w: w.clone(), b: None };
        let mut want = vec![0.0; n * rows];
        wisp::cpu::ops::rms_norm(&x, &norm, 1e-5, &mut want);
        let (xb, wb) = (g.storage_f32("x", &x).unwrap(), g.storage_f32("w", &w).unwrap());
        let ob = g.storage("out", 4 * (n * rows) as u64, None).unwrap();
        pollster::block_on(g.rms_norm(&xb, &wb, &ob, n, rows, 1e-5)).unwrap();
        let got = pollster::block_on(g.read_f32(&ob, n * rows)).unwrap();
        assert_close(&format!("rms_norm {rows}x{n}"), &got, &want, NORM_ATOL, NORM_RTOL);
    }
}

/// Runs `shader` once over `groups` workgroups with `buffers` bound in order.
fn run(g: &Gpu, shader: &shaders::Shader, defines: &[&str], buffers: &[&wgpu::Buffer], groups: u32) {
    let p = pollster::block_on(g.pipeline(shader, defines, &[])).unwrap();
    let bind = g.bind(&p, buffers);
    g.dispatch(&p, &bind, groups);
}

/// The forward pass's state for one token: [pos0, n = 1, token].
fn state(g: &Gpu, pos: u32, token: u32) -> wgpu::Buffer {
    batch_state(g, pos, &[token])
}

/// The forward pass's state for a batch: [pos0, n, tokens…].
fn batch_state(g: &Gpu, pos: u32, tokens: &[u32]) -> wgpu::Buffer {
    let mut words = vec![pos, tokens.len() as u32];
    words.extend_from_slice(tokens);
    g.storage("state", 4 * words.len() as u64, Some(wisp::gpu::as_bytes(&words))).unwrap()
}

#[test]
fn layer_norm_matches_cpu() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(0x5EED_0007);
    for n in [1usize, 7, 768, 2049] {
        let x: Vec<f32> = (0..n).map(|_| 3.0 * rng.f() + 0.5).collect();
        let (w, b): (Vec<f32>, Vec<f32>) = (0..n).map(|_| (rng.f(), rng.f())).unzip();
        let norm = wisp::model::Norm { w: w.clone(), b: Some(b.clone()) };
        let mut want = vec![0.0; n];
        wisp::cpu::ops::layer_norm(&x, &norm, 1e-5, &mut want);
        let (xb, wb, bb) = (
            g.storage_f32("x", &x).unwrap(),
            g.storage_f32("w", &w).unwrap(),
            g.storage_f32("b", &b).unwrap(),
        );
        let ob = g.storage("out", 4 * n as u64, None).unwrap();
        let p = g.uniform("p", &[n as u32, 1, 1, 1e-5f32.to_bits()]);
        run(&g, &shaders::LAYER_NORM, &[], &[&xb, &wb, &bb, &ob, &p], 1);
        let got = pollster::block_on(g.read_f32(&ob, n)).unwrap();
        assert_close(&format!("layer_norm n {n}"), &got, &want, NORM_ATOL, NORM_RTOL);
    }
}

#[test]
fn embed_matches_cpu_dequantize_for_every_type() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(0x5EED_0003);
    for ty in ALL_TYPES {
        let bs = if ty.is_quantized() { ty.block_size() } else { 1 };
        let (rows, cols) = (5, if bs == 1 { 7 } else { 2 * bs });
        let data = weights(&mut rng, ty, rows, cols);
        let m = GpuMatrix::upload(&g, "w", ty, rows, cols, &data).unwrap();
        for token in [0u32, 3, 4] {
            let rb = data.len() / rows;
            let mut want = vec![0.0; cols];
            wisp::quant::dequantize(ty, &data[token as usize * rb..(token as usize + 1) * rb], &mut want);
            let out = g.storage("out", 4 * cols as u64, None).unwrap();
            let params = g.uniform("p", &[cols as u32, m.row_words as u32, rows as u32, 0]);
            run(
                &g,
                &shaders::EMBED,
                &[shaders::type_define(ty)],
                &[&m.buf, &state(&g, 0, token), &out, &params],
                (cols as u32).div_ceil(64),
            );
            let got = pollster::block_on(g.read_f32(&out, cols)).unwrap();
            // dequantization is exact in f32 up to the order of d·q + m
            assert_close(&format!("embed {} row {token}", ty.name()), &got, &want, 1e-6, 1e-6);
        }
    }
}

/// RoPE fused with the cache append (`rope.wgsl`): queries rotated in place, keys rotated into
/// the f16 key cache and values copied into the value cache, for two batch rows at positions
/// `pos`, `pos + 1` (the cache's last two), both pairings, full and partial rotary dimensions,
/// plain and with ggml's extensions (per-pair frequency factors, linear scaling, attention factor:
/// Llama 3.x's `rope_freqs`, Phi-3.5's LongRoPE).
#[test]
fn rope_and_cache_append_match_cpu_in_both_pairings() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(0x5EED_0004);
    let (n_head, n_head_kv, hd, n) = (9usize, 3usize, 64usize, 2usize);
    let kv_dim = n_head_kv * hd;
    for style in [RopeStyle::Interleaved, RopeStyle::Neox] {
        for (pos, rope_dims, scaled) in [
            (0usize, 64usize, false),
            (1, 64, false),
            (4094, 64, false),
            (17, 32, false),
            (4094, 64, true),
            (9, 32, true),
        ] {
            let n_ctx = pos + n;
            let factors: Vec<f32> = (0..rope_dims / 2).map(|_| 1.0 + 7.0 * rng.f().abs()).collect();
            let r = wisp::model::ops::Rope {
                dims: rope_dims,
                base: 10000.0,
                style,
                factors: scaled.then_some(&factors[..]),
                freq_scale: if scaled { 0.25 } else { 1.0 },
                attn_factor: if scaled { 1.19 } else { 1.0 },
            };
            let q: Vec<f32> = (0..n * n_head * hd).map(|_| rng.f()).collect();
            let k: Vec<f32> = (0..n * kv_dim).map(|_| rng.f()).collect();
            let v: Vec<f32> = (0..n * kv_dim).map(|_| rng.f()).collect();
            let (mut wq, mut wk) = (q.clone(), k.clone());
            for (t, row) in wq.chunks_exact_mut(n_head * hd).enumerate() {
                row.chunks_exact_mut(hd).for_each(|h| wisp::cpu::ops::rope_ext(h, pos + t, &r));
            }
            for (t, row) in wk.chunks_exact_mut(kv_dim).enumerate() {
                row.chunks_exact_mut(hd).for_each(|h| wisp::cpu::ops::rope_ext(h, pos + t, &r));
            }
            let (qb, kb, vb) = (
                g.storage_f32("q", &q).unwrap(),
                g.storage_f32("k", &k).unwrap(),
                g.storage_f32("v", &v).unwrap(),
            );
            let (kcb, vcb) = (
                g.storage("kc", 2 * (n_ctx * kv_dim) as u64, None).unwrap(),
                g.storage("vc", 2 * (n_ctx * kv_dim) as u64, None).unwrap(),
            );
            let ts = 10000f32.powf(-2.0 / rope_dims as f32);
            let params = g.uniform(
                "p",
                &[
                    n_head as u32,
                    n_head_kv as u32,
                    hd as u32,
                    rope_dims as u32,
                    ts.to_bits(),
                    n_ctx as u32,
                    r.freq_scale.to_bits(),
                    r.attn_factor.to_bits(),
                ],
            );
            let mut defines = vec![];
            defines.extend((style == RopeStyle::Neox).then_some("NEOX"));
            defines.extend(scaled.then_some("FACTORS"));
            let fb = g.storage_f32("factors", &factors).unwrap();
            let threads = (n_head * rope_dims / 2 + kv_dim / 2) as u32;
            let st = batch_state(&g, pos as u32, &[0; 2]);
            let p = pollster::block_on(g.pipeline(&shaders::ROPE, &defines, &[])).unwrap();
            let mut bufs = vec![&qb, &kb, &vb, &kcb, &vcb, &st, &params];
            if scaled {
                bufs.push(&fb);
            }
            let bind = g.bind(&p, &bufs);
            g.dispatch_xyz(&p, &bind, (threads.div_ceil(64), 1, n as u32));
            let what = format!("rope {style:?} pos {pos} dims {rope_dims} scaled {scaled}");
            // GPU cos/sin of angles up to 4095 rad differ from libm's by ~1e-4
            assert_close(&what, &pollster::block_on(g.read_f32(&qb, q.len())).unwrap(), &wq, 5e-4, 1e-4);
            // the cache's rows pos, pos + 1: f16 of the rotated keys and of the values
            let cached = |buf: &wgpu::Buffer| -> Vec<f32> {
                let words = pollster::block_on(g.read_u32(buf, n_ctx * kv_dim / 2)).unwrap();
                words[pos * kv_dim / 2..]
                    .iter()
                    .flat_map(|w| {
                        [f16::from_bits(*w as u16).to_f32(), f16::from_bits((w >> 16) as u16).to_f32()]
                    })
                    .collect()
            };
            let f16_of = |x: &[f32]| -> Vec<f32> { x.iter().map(|&x| f16::from_f32(x).to_f32()).collect() };
            // an f16 step (~5e-4 relative) on top of the angle error
            assert_close(&format!("{what}, key cache"), &cached(&kcb), &f16_of(&wk), 1e-3, 1e-3);
            assert_close(&format!("{what}, value cache"), &cached(&vcb), &f16_of(&v), 0.0, 0.0);
        }
    }
}

const ATTN_ATOL: f32 = 1e-4;
const ATTN_RTOL: f32 = 1e-3;

/// The reference attention of one query head `q` [hd] over positions `0..len` of an f16 cache
/// (`kc`, `vc` [n_ctx · kv_dim], this head's KV head at `kvo`): softmax(q·K·scale)·V.
fn attend_ref(
    q: &[f32],
    kc: &[f16],
    vc: &[f16],
    len: usize,
    kv_dim: usize,
    kvo: usize,
    scale: f32,
) -> Vec<f32> {
    let hd = q.len();
    let mut sc: Vec<f32> = (0..len)
        .map(|t| (0..hd).map(|j| q[j] * kc[t * kv_dim + kvo + j].to_f32()).sum::<f32>() * scale)
        .collect();
    wisp::cpu::ops::softmax(&mut sc);
    let mut out = vec![0.0f32; hd];
    for (t, w) in sc.iter().enumerate() {
        for j in 0..hd {
            out[j] += w * vc[t * kv_dim + kvo + j].to_f32();
        }
    }
    out
}

/// An f16 cache as the kernels hold it: pairs packed in u32.
fn f16_buffer(g: &Gpu, label: &str, v: &[f16]) -> wgpu::Buffer {
    let words: Vec<u32> =
        v.chunks_exact(2).map(|p| p[0].to_bits() as u32 | (p[1].to_bits() as u32) << 16).collect();
    g.storage(label, 2 * v.len() as u64, Some(wisp::gpu::as_bytes(&words))).unwrap()
}

/// KV append, then decode attention (split over chunks of 64 positions, then merged) against a
/// CPU reference over the same f16 cache: context lengths 1, 37, 64, 65 and 4,096, a cache
/// longer than the context (its tail must be ignored), grouped query heads (3 per KV head, and 18,
/// more than one workgroup's 8), head sizes 64, 128 and 160.
#[test]
fn decode_attention_matches_cpu_at_context_1_to_4096() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(0x5EED_0005);
    // (n_head, n_head_kv, head_dim, context length, cache length)
    let cases = [
        (6usize, 2usize, 64usize, 1usize, 1usize),
        (6, 2, 64, 37, 37),
        (6, 2, 64, 64, 100),
        (6, 2, 64, 65, 65),
        (6, 2, 64, 4096, 4096),
        (18, 1, 128, 300, 333),
        (4, 4, 160, 129, 129),
    ];
    for (n_head, n_head_kv, hd, len, n_ctx) in cases {
        let (kv_dim, group) = (n_head_kv * hd, n_head / n_head_kv);
        // the cache before the last position, as f16
        let kc: Vec<f16> = (0..n_ctx * kv_dim).map(|_| f16::from_f32(rng.f())).collect();
        let vc: Vec<f16> = (0..n_ctx * kv_dim).map(|_| f16::from_f32(rng.f())).collect();
        let k_new: Vec<f32> = (0..kv_dim).map(|_| rng.f()).collect();
        let v_new: Vec<f32> = (0..kv_dim).map(|_| rng.f()).collect();
        let q: Vec<f32> = (0..n_head * hd).map(|_| 2.0 * rng.f()).collect();
        let pos = len - 1;
        let (mut kc_ref, mut vc_ref) = (kc.clone(), vc.clone());
        for i in 0..kv_dim {
            kc_ref[pos * kv_dim + i] = f16::from_f32(k_new[i]);
            vc_ref[pos * kv_dim + i] = f16::from_f32(v_new[i]);
        }
        let scale = 1.0 / (hd as f32).sqrt();
        let want: Vec<f32> = (0..n_head)
            .flat_map(|h| {
                attend_ref(&q[h * hd..(h + 1) * hd], &kc_ref, &vc_ref, len, kv_dim, (h / group) * hd, scale)
            })
            .collect();
        let (kcb, vcb) = (f16_buffer(&g, "kc", &kc), f16_buffer(&g, "vc", &vc));
        let (kb, vb, qb) = (
            g.storage_f32("k", &k_new).unwrap(),
            g.storage_f32("v", &v_new).unwrap(),
            g.storage_f32("q", &q).unwrap(),
        );
        let st = state(&g, pos as u32, 0);
        let kvp = g.uniform("kv", &[kv_dim as u32, n_ctx as u32, 0, 0]);
        run(
            &g,
            &shaders::KV_APPEND,
            &[],
            &[&kb, &vb, &kcb, &vcb, &st, &kvp],
            (kv_dim as u32 / 2).div_ceil(64),
        );
        let max_chunks = n_ctx.div_ceil(64);
        let part = g.storage("partials", 4 * (n_head * max_chunks * (hd + 2)) as u64, None).unwrap();
        let out = g.storage("out", 4 * (n_head * hd) as u64, None).unwrap();
        let ap = g.uniform(
            "attn",
            &[
                n_head as u32,
                group as u32,
                hd as u32,
                kv_dim as u32,
                n_ctx as u32,
                max_chunks as u32,
                scale.to_bits(),
                0,
            ],
        );
        // chunks of the written positions along x, KV heads × subgroups of 8 heads along y (as
        // the forward pass records it)
        let p = pollster::block_on(g.pipeline(&shaders::ATTN_DECODE, &[], &[])).unwrap();
        let bind = g.bind(&p, &[&qb, &kcb, &vcb, &part, &st, &ap]);
        let head_groups = n_head_kv * group.div_ceil(8);
        g.dispatch_xy(&p, &bind, ((len as u32).div_ceil(64), head_groups as u32));
        run(&g, &shaders::ATTN_MERGE, &[], &[&part, &out, &st, &ap], n_head as u32);
        let got = pollster::block_on(g.read_f32(&out, n_head * hd)).unwrap();
        let what = format!("decode attention len {len} cache {n_ctx} heads {n_head}/{n_head_kv} hd {hd}");
        assert_close(&what, &got, &want, ATTN_ATOL, ATTN_RTOL);
    }
}

/// KV append of a batch, then causal prefill attention, against a CPU reference over the same f16
/// cache: batches starting at 0 and deep into the context (4,000), one row and several chunks of
/// 64 positions, head sizes 64 and 160 (more than one output dimension per thread), GQA.
#[test]
fn prefill_attention_matches_cpu() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(0x5EED_0009);
    let (n_head, n_head_kv) = (6usize, 2usize);
    for (pos0, n, hd) in [(0usize, 1usize, 64usize), (0, 13, 64), (37, 70, 160), (4000, 9, 64)] {
        let (kv_dim, group) = (n_head_kv * hd, n_head / n_head_kv);
        let n_ctx = pos0 + n;
        // the cache before the batch, as f16, and the batch's own keys and values in f32
        let kc: Vec<f16> = (0..n_ctx * kv_dim).map(|_| f16::from_f32(rng.f())).collect();
        let vc: Vec<f16> = (0..n_ctx * kv_dim).map(|_| f16::from_f32(rng.f())).collect();
        let k_new: Vec<f32> = (0..n * kv_dim).map(|_| rng.f()).collect();
        let v_new: Vec<f32> = (0..n * kv_dim).map(|_| rng.f()).collect();
        let q: Vec<f32> = (0..n * n_head * hd).map(|_| 2.0 * rng.f()).collect();
        let (mut kc_ref, mut vc_ref) = (kc.clone(), vc.clone());
        for i in 0..n * kv_dim {
            kc_ref[pos0 * kv_dim + i] = f16::from_f32(k_new[i]);
            vc_ref[pos0 * kv_dim + i] = f16::from_f32(v_new[i]);
        }
        let scale = 1.0 / (hd as f32).sqrt();
        // batch row t sees positions 0..=pos0 + t
        let want: Vec<f32> = (0..n * n_head)
            .flat_map(|th| {
                let (t, h) = (th / n_head, th % n_head);
                let qh = &q[th * hd..(th + 1) * hd];
                attend_ref(qh, &kc_ref, &vc_ref, pos0 + t + 1, kv_dim, (h / group) * hd, scale)
            })
            .collect();
        let (kcb, vcb) = (f16_buffer(&g, "kc", &kc), f16_buffer(&g, "vc", &vc));
        let (kb, vb, qb) = (
            g.storage_f32("k", &k_new).unwrap(),
            g.storage_f32("v", &v_new).unwrap(),
            g.storage_f32("q", &q).unwrap(),
        );
        let st = batch_state(&g, pos0 as u32, &vec![0; n]);
        let kvp = g.uniform("kv", &[kv_dim as u32, n_ctx as u32, 0, 0]);
        let p = pollster::block_on(g.pipeline(&shaders::KV_APPEND, &[], &[])).unwrap();
        let bind = g.bind(&p, &[&kb, &vb, &kcb, &vcb, &st, &kvp]);
        g.dispatch_xyz(&p, &bind, ((kv_dim as u32 / 2).div_ceil(64), 1, n as u32));
        let out = g.storage("out", 4 * (n * n_head * hd) as u64, None).unwrap();
        let ap = g.uniform(
            "attn",
            &[n_head as u32, group as u32, hd as u32, kv_dim as u32, n_ctx as u32, 0, scale.to_bits(), 0],
        );
        let p = pollster::block_on(g.pipeline(&shaders::ATTN_PREFILL, &[], &[])).unwrap();
        let bind = g.bind(&p, &[&qb, &kcb, &vcb, &out, &st, &ap]);
        g.dispatch_xyz(&p, &bind, (n_head as u32, 1, n as u32));
        let got = pollster::block_on(g.read_f32(&out, n * n_head * hd)).unwrap();
        let what = format!("prefill attention pos0 {pos0} n {n} head_dim {hd}");
        assert_close(&what, &got, &want, ATTN_ATOL, ATTN_RTOL);
    }
}

#[test]
fn elementwise_and_argmax_match_cpu() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(0x5EED_0006);
    // more workgroups than one grid dimension holds
    for n in [1usize, 1000, 65_535 * 64 + 5] {
        let a: Vec<f32> = (0..n).map(|_| 8.0 * rng.f()).collect();
        let b: Vec<f32> = (0..n).map(|_| rng.f()).collect();
        for op in ["ADD", "SILU_MUL", "GELU"] {
            let want: Vec<f32> = a
                .iter()
                .zip(&b)
                .map(|(x, y)| match op {
                    "ADD" => x + y,
                    "SILU_MUL" => wisp::cpu::ops::silu(*x) * y,
                    _ => wisp::cpu::ops::gelu_tanh(*x),
                })
                .collect();
            let (ab, bb) = (g.storage_f32("a", &a).unwrap(), g.storage_f32("b", &b).unwrap());
            let groups = (n as u32).div_ceil(64);
            let p = g.uniform("p", &[n as u32, wisp::gpu::grid(groups).0, 0, 0]);
            let pipeline = pollster::block_on(g.pipeline(&shaders::ELEMENTWISE, &[op], &[])).unwrap();
            // GELU leaves `b` unread, so its derived layout has no binding 1
            let bind = if op == "GELU" {
                g.bind_at(&pipeline, &[(0, &ab), (2, &p)])
            } else {
                g.bind(&pipeline, &[&ab, &bb, &p])
            };
            g.dispatch(&pipeline, &bind, groups);
            let got = pollster::block_on(g.read_f32(&ab, n)).unwrap();
            assert_close(&format!("{op} n {n}"), &got, &want, 1e-6, 1e-5);
        }
    }
    // argmax: the lowest index among equal maxima, as the CPU's
    for (n, ties) in [(1usize, false), (49_152, false), (49_152, true), (300, true)] {
        let mut l: Vec<f32> = (0..n).map(|_| rng.f()).collect();
        if ties {
            let (i, j) = (n / 3, 2 * n / 3);
            l[i] = 5.0;
            l[j] = 5.0;
        }
        let lb = g.storage_f32("logits", &l).unwrap();
        let (st, out) = (state(&g, 0, 0), g.storage("out", 4, None).unwrap());
        let p = g.uniform("p", &[n as u32, 0, 0, 0]);
        run(&g, &shaders::ARGMAX, &[], &[&lb, &st, &out, &p], 1);
        let got = pollster::block_on(g.read_u32(&out, 1)).unwrap()[0];
        assert_eq!(got, wisp::sampling::argmax(&l), "argmax n {n} ties {ties}");
        assert_eq!(pollster::block_on(g.read_u32(&st, 3)).unwrap()[2], got, "argmax writes the next token");
    }
}

/// Runs the `sample` kernel on `logits` with `draw`: (token, pool size when it could not pick).
fn gpu_sample(g: &Gpu, logits: &[f32], draw: &wisp::sampling::DeviceDraw) -> (u32, u32) {
    use wisp::gpu::as_bytes;
    let n = logits.len();
    let lb = g.storage_f32("logits", logits).unwrap();
    let work = g.storage("work", 4 * n as u64, None).unwrap();
    let pen = g.storage("pen", 8 * draw.counts.len().max(1) as u64, Some(as_bytes(&draw.counts))).unwrap();
    let (st, out) = (state(g, 0, 0), g.storage("out", 8, None).unwrap());
    let p = g.uniform("p", &wisp::gpu::forward::sample_words(n, draw));
    run(g, &shaders::SAMPLE, &[], &[&lb, &work, &pen, &st, &out, &p], 1);
    let got = pollster::block_on(g.read_u32(&out, 2)).unwrap();
    if got[1] == 0 {
        assert_eq!(
            pollster::block_on(g.read_u32(&st, 3)).unwrap()[2],
            got[0],
            "sample writes the next token"
        );
    }
    (got[0], got[1])
}

#[test]
fn sample_picks_what_the_cpu_sampler_picks() {
    use wisp::sampling::{Sampler, SamplingParams};
    let Some(g) = gpu() else { return };
    let mut rng = Rng(0x5EED_0007);
    let d = SamplingParams::default(); // T 0.8, top-k 40, top-p 0.95, min-p 0.05
    let penalties = SamplingParams {
        repetition_penalty: 1.3,
        frequency_penalty: 0.2,
        presence_penalty: 0.5,
        ..d.clone()
    };
    // (what, vocabulary, logit scale, options, ties, NaNs)
    let cases: Vec<(&str, usize, f32, SamplingParams, bool, bool)> = vec![
        ("defaults", 49_152, 6.0, d.clone(), false, false),
        ("one token", 1, 6.0, d.clone(), false, false),
        (
            "top-k off, min-p",
            3_001,
            4.0,
            SamplingParams { top_k: 0, min_p: 0.1, temperature: 1.0, ..d.clone() },
            false,
            false,
        ),
        (
            "top-k above the vocabulary",
            700,
            3.0,
            SamplingParams { top_k: 5_000, min_p: 0.2, ..d.clone() },
            false,
            false,
        ),
        (
            "top-k = pool size",
            5_000,
            2.0,
            SamplingParams { top_k: 1_024, top_p: 1.0, min_p: 0.0, ..d.clone() },
            false,
            false,
        ),
        ("top-k 1", 10_000, 6.0, SamplingParams { top_k: 1, ..d.clone() }, false, false),
        (
            "narrow top-p, hot",
            49_152,
            6.0,
            SamplingParams { top_k: 5, top_p: 0.5, temperature: 1.5, ..penalties.clone() },
            false,
            false,
        ),
        (
            "greedy with penalties",
            300,
            6.0,
            SamplingParams { temperature: 0.0, repeat_last_n: 64, ..penalties.clone() },
            false,
            false,
        ),
        (
            "penalties, long window",
            2_000,
            3.0,
            SamplingParams { repeat_last_n: 10_000, ..penalties.clone() },
            false,
            false,
        ),
        (
            "ties cut by top-k",
            5_000,
            3.0,
            SamplingParams { top_k: 100, min_p: 0.0, top_p: 1.0, ..d.clone() },
            true,
            false,
        ),
        ("ties, greedy", 5_000, 3.0, SamplingParams { temperature: 0.0, ..penalties.clone() }, true, false),
        ("NaN logits", 4_000, 4.0, SamplingParams { top_k: 50, ..d.clone() }, false, true),
    ];
    for (what, n, scale, params, ties, nans) in cases {
        for trial in 0..12u64 {
            let mut logits: Vec<f32> = (0..n).map(|_| scale * rng.f()).collect();
            if ties {
                // a handful of distinct values: top-k and the maximum cut through equal logits
                logits.iter_mut().for_each(|v| *v = (*v * 2.0).round() / 2.0);
            }
            if nans {
                for _ in 0..n / 10 {
                    logits[(rng.next() % n as u64) as usize] = f32::NAN;
                }
            }
            let history: Vec<u32> =
                (0..(rng.next() % 200) as usize).map(|_| (rng.next() % n as u64) as u32).collect();
            let params = SamplingParams { seed: trial, ..params.clone() };
            let want = Sampler::new(params.clone()).unwrap().sample(&mut logits.clone(), &history);
            let draw = Sampler::new(params).unwrap().device_draw(&history);
            let (got, over) = gpu_sample(&g, &logits, &draw);
            assert_eq!(over, 0, "{what}: the pool fits");
            assert_eq!(got, want, "{what}, trial {trial}: GPU picked {got}, CPU {want} (r {})", draw.r);
        }
    }
    // no top-k and no min-p floor: 5,000 candidates are more than the kernel sorts; it says so
    let params = SamplingParams { top_k: 0, min_p: 0.0, temperature: 1.0, ..d };
    let logits: Vec<f32> = (0..5_000).map(|_| rng.f()).collect();
    let (_, over) = gpu_sample(&g, &logits, &Sampler::new(params).unwrap().device_draw(&[]));
    assert_eq!(over, 5_000, "a pool over {} is handed back", wisp::gpu::forward::SAMPLE_POOL);
}

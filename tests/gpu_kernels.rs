//! Every WGSL kernel against the CPU path (the specification) on seeded inputs with awkward
//! shapes. Tolerances (`|gpu − cpu| ≤ atol + rtol·|cpu|`) are listed in shaders/README.md. With
//! no adapter (no Vulkan/WebGPU) the tests print that they were skipped.

use half::{bf16, f16};
use wisp::gpu::{Gpu, GpuMatrix};
use wisp::quant::{vec_dot_f32_scalar, GgmlType};

fn gpu() -> Option<Gpu> {
    match pollster::block_on(Gpu::new()) {
        Ok(g) => {
            eprintln!("adapter: {}", g.describe());
            Some(g)
        }
        Err(e) => {
            eprintln!("SKIPPED (no GPU adapter): {e}");
            None
        }
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// uniform in [-1, 1)
    fn f(&mut self) -> f32 {
        (self.next() % 2_000_000) as f32 / 1_000_000.0 - 1.0
    }
}

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
            for b in data.chunks_exact_mut(ts) {
                let h = |v: f32| f16::from_f32(v).to_le_bytes();
                match ty {
                    GgmlType::Q6K => b[208..210].copy_from_slice(&h(0.001 * (1.0 + rng.f()))),
                    GgmlType::Q4_1 | GgmlType::Q4K => {
                        b[0..2].copy_from_slice(&h(0.01 * (1.0 + rng.f())));
                        b[2..4].copy_from_slice(&h(0.05 * rng.f()));
                    }
                    _ => b[0..2].copy_from_slice(&h(0.01 * (1.0 + rng.f()))),
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

const MATVEC_ATOL: f32 = 1e-5;
const MATVEC_RTOL: f32 = 1e-4;

#[test]
fn matvec_matches_cpu_for_every_type_and_awkward_shape() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng(0x5EED_0001);
    let small = |bs: usize| if bs == 1 { vec![1, 33, 577] } else { vec![bs, 3 * bs, 18 * bs] };
    for ty in [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q8_0,
        GgmlType::Q4K,
        GgmlType::Q6K,
    ] {
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

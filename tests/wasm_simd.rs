//! The wasm SIMD128 dot products (src/quant/simd128.rs), with f32 activations (single and batched
//! over token rows) and with int8 ones, are bit-identical to the plain-Rust specification, on seeded rows of every block type they cover, with awkward lengths and
//! activations spanning many magnitudes. wasm32 only: `make test` runs it through
//! wasm-bindgen-test-runner (`scripts/wasm_test.sh`), the SIMD128 build in Node and the
//! relaxed-SIMD build in headless Chromium; natively this file is empty. Also the
//! SIMD128 f16 conversion the attention reads the KV cache with, for all 65,536 values.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::wasm_bindgen_test;

// The relaxed-SIMD build runs in Chromium (scripts/wasm_test.sh): Node 20's relaxed SIMD is an
// experimental flag whose `i32x4.relaxed_dot_i8x16_i7x16_add_s` returns twice the dot product.
#[cfg(target_feature = "relaxed-simd")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
use wisp::quant::{
    quantize_q8, vec_dot_f32, vec_dot_f32_rows, vec_dot_f32_scalar, vec_dot_q8, vec_dot_q8_rows,
    vec_dot_q8_scalar, BlockQ8, GgmlType,
};

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

#[wasm_bindgen_test]
fn simd128_dots_equal_the_scalar_specification_bit_for_bit() {
    let mut rng = Rng(0x5EED_0128);
    for ty in
        [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::IQ4NL]
    {
        for blocks in [1usize, 2, 7, 18, 64] {
            let cols = blocks * 32;
            for trial in 0..20 {
                // random block bytes with finite f16 scales of varied size
                let mut row: Vec<u8> = (0..blocks * ty.type_size()).map(|_| rng.next() as u8).collect();
                for b in row.chunks_exact_mut(ty.type_size()) {
                    for &o in ty.half_offsets() {
                        let v = half::f16::from_f32(rng.f() * 10f32.powi((rng.next() % 5) as i32 - 3));
                        b[o..o + 2].copy_from_slice(&v.to_le_bytes());
                    }
                }
                let x: Vec<f32> =
                    (0..cols).map(|_| rng.f() * 10f32.powi((rng.next() % 7) as i32 - 3)).collect();
                let (got, want) = (vec_dot_f32(ty, &row, &x), vec_dot_f32_scalar(ty, &row, &x));
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{ty:?} {blocks} blocks trial {trial}: simd {got} scalar {want}"
                );
                // int8 activations (the llamacpp numerics): integer block dots
                let mut q8 = vec![BlockQ8::default(); blocks];
                quantize_q8(&x, &mut q8);
                let (got, want) = (vec_dot_q8(ty, &row, &q8), vec_dot_q8_scalar(ty, &row, &q8));
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{ty:?} {blocks} blocks trial {trial}: int8 {got} vs {want}"
                );
                // several token rows sharing each expanded block (prefill), partial groups too
                let rows = 1 + trial % 9;
                let xs: Vec<f32> =
                    (0..rows * cols).map(|_| rng.f() * 10f32.powi((rng.next() % 7) as i32 - 3)).collect();
                let mut out = vec![0.0f32; rows];
                vec_dot_f32_rows(ty, &row, &xs, cols, &mut out);
                for (t, o) in out.iter().enumerate() {
                    let want = vec_dot_f32_scalar(ty, &row, &xs[t * cols..(t + 1) * cols]);
                    assert_eq!(o.to_bits(), want.to_bits(), "{ty:?} {blocks} blocks, row {t} of {rows}");
                }
                // the same token rows as int8 blocks: each weight block unpacked once for all
                let mut q8s = vec![BlockQ8::default(); rows * blocks];
                quantize_q8(&xs, &mut q8s);
                let mut out = vec![f32::NAN; rows];
                vec_dot_q8_rows(ty, &row, &q8s, blocks, &mut out);
                for (t, o) in out.iter().enumerate() {
                    let want = vec_dot_q8_scalar(ty, &row, &q8s[t * blocks..(t + 1) * blocks]);
                    assert_eq!(o.to_bits(), want.to_bits(), "{ty:?} {blocks} blocks, int8 row {t} of {rows}");
                }
            }
        }
    }
}

#[wasm_bindgen_test]
fn simd128_f16_conversion_is_exact_for_every_value() {
    for base in (0..=u16::MAX).step_by(8) {
        let h: [u16; 8] = std::array::from_fn(|i| base + i as u16);
        for (bits, got) in h.iter().zip(wisp::quant::f16x8_bits(&h)) {
            let want = half::f16::from_bits(*bits).to_f32();
            if want.is_nan() {
                assert!(got.is_nan(), "{bits:#06x}: {got} is not NaN");
            } else {
                assert_eq!(got.to_bits(), want.to_bits(), "{bits:#06x}: {got} vs {want}");
            }
        }
    }
}

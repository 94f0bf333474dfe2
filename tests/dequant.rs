//! Reference dequantizers against PyPI `gguf`'s `dequantize`, bit for bit
//! (fixture from scripts/make_dequant_fixture.py).

mod common;
use wisp::quant::{dequantize, GgmlType};

#[test]
fn every_type_matches_gguf_py_exactly() {
    let f = common::read_json("dequant.json");
    let mut seen = Vec::new();
    for case in f["cases"].as_array().unwrap() {
        let ty = GgmlType::from_id(case["type_id"].as_u64().unwrap() as u32).unwrap();
        let hex = case["bytes"].as_str().unwrap();
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let want: Vec<u32> =
            case["f32_bits"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let mut got = vec![0.0f32; want.len()];
        assert_eq!(bytes.len() / ty.type_size() * ty.block_size(), want.len());
        dequantize(ty, &bytes, &mut got);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.to_bits(), *w, "{}: element {i}: {g} vs {}", ty.name(), f32::from_bits(*w));
        }
        seen.push(ty);
    }
    for ty in GgmlType::ALL {
        assert!(seen.contains(&ty), "no fixture for {}", ty.name());
    }
}

//! Every kernel's WGSL source (`shaders/*.wgsl`, compiled in) and the variants it is built in.

use crate::quant::GgmlType;

pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
    /// Each variant's defines; the validation test builds every one.
    pub variants: &'static [&'static [&'static str]],
}

pub const MATVEC: Shader =
    Shader { name: "matvec", source: include_str!("../../shaders/matvec.wgsl"), variants: TYPES_AND_BIAS };

pub const MATMUL: Shader =
    Shader { name: "matmul", source: include_str!("../../shaders/matmul.wgsl"), variants: TYPES_AND_BIAS };

pub const RMS_NORM: Shader = Shader {
    name: "rms_norm",
    source: include_str!("../../shaders/rms_norm.wgsl"),
    variants: &[&[], &["INPLACE"]],
};

/// Each weight type's define (its GGML name, [`type_define`]) followed by each group of extra
/// defines, then any further variants after a `;`: `type_variants!([], ["BIAS"])` is every type
/// plain, then every type with a bias.
macro_rules! type_variants {
    ($([$($extra:literal),*]),* $(; $($more:expr),*)?) => {
        &[$(
            &["F32", $($extra),*],
            &["F16", $($extra),*],
            &["BF16", $($extra),*],
            &["Q4_0", $($extra),*],
            &["Q4_1", $($extra),*],
            &["Q5_0", $($extra),*],
            &["Q5_1", $($extra),*],
            &["Q8_0", $($extra),*],
            &["IQ4_NL", $($extra),*],
            &["Q2_K", $($extra),*],
            &["Q3_K", $($extra),*],
            &["Q4_K", $($extra),*],
            &["Q5_K", $($extra),*],
            &["Q6_K", $($extra),*],
        )* $($($more),*)?]
    };
}

/// Each weight type: plain, with a bias, adding into the output (the residual add fused), both,
/// as SwiGLU's stacked gate/up product, and as attention's stacked Q/K/V product split into three
/// outputs (with and without a bias).
const TYPES_AND_BIAS: &[&[&str]] =
    type_variants!([], ["BIAS"], ["ACC"], ["BIAS", "ACC"], ["SWIGLU"], ["SPLIT"], ["BIAS", "SPLIT"]);

/// Each weight type, each as one part of a table cut by rows (PART), and the types GPT-2's
/// learned positions come in.
const TYPES_AND_POSITION: &[&[&str]] = type_variants!([], ["PART"];
    &["F32", "POSITION"], &["F16", "POSITION"], &["BF16", "POSITION"], &["Q8_0", "POSITION"]);

pub const EMBED: Shader =
    Shader { name: "embed", source: include_str!("../../shaders/embed.wgsl"), variants: TYPES_AND_POSITION };
pub const ROPE: Shader = Shader {
    name: "rope",
    source: include_str!("../../shaders/rope.wgsl"),
    variants: &[&[], &["NEOX"], &["FACTORS"], &["NEOX", "FACTORS"]],
};
pub const KV_APPEND: Shader =
    Shader { name: "kv_append", source: include_str!("../../shaders/kv_append.wgsl"), variants: &[&[]] };
pub const ATTN_DECODE: Shader =
    Shader { name: "attn_decode", source: include_str!("../../shaders/attn_decode.wgsl"), variants: &[&[]] };
pub const ATTN_MERGE: Shader =
    Shader { name: "attn_merge", source: include_str!("../../shaders/attn_merge.wgsl"), variants: &[&[]] };
pub const ATTN_PREFILL: Shader = Shader {
    name: "attn_prefill",
    source: include_str!("../../shaders/attn_prefill.wgsl"),
    variants: &[&[]],
};
pub const SCATTER: Shader =
    Shader { name: "scatter", source: include_str!("../../shaders/scatter.wgsl"), variants: &[&[]] };
pub const ELEMENTWISE: Shader = Shader {
    name: "elementwise",
    source: include_str!("../../shaders/elementwise.wgsl"),
    variants: &[&["ADD"], &["SILU_MUL"], &["GELU"], &["GELU_MUL"], &["SCALE"]],
};
pub const LAYER_NORM: Shader =
    Shader { name: "layer_norm", source: include_str!("../../shaders/layer_norm.wgsl"), variants: &[&[]] };
pub const MASK: Shader =
    Shader { name: "mask", source: include_str!("../../shaders/mask.wgsl"), variants: &[&[]] };
pub const ARGMAX: Shader =
    Shader { name: "argmax", source: include_str!("../../shaders/argmax.wgsl"), variants: &[&[]] };
pub const SAMPLE: Shader =
    Shader { name: "sample", source: include_str!("../../shaders/sample.wgsl"), variants: &[&[]] };

pub const ALL: &[Shader] = &[
    MATVEC,
    MATMUL,
    RMS_NORM,
    LAYER_NORM,
    EMBED,
    ROPE,
    KV_APPEND,
    ATTN_DECODE,
    ATTN_MERGE,
    ATTN_PREFILL,
    ELEMENTWISE,
    SCATTER,
    MASK,
    ARGMAX,
    SAMPLE,
];

/// Libraries kernels `#include` (`shaders/lib/`), by name.
pub fn library(name: &str) -> Option<&'static str> {
    match name {
        "blocks" => Some(include_str!("../../shaders/lib/blocks.wgsl")),
        "block_dot" => Some(include_str!("../../shaders/lib/block_dot.wgsl")),
        "dequant" => Some(include_str!("../../shaders/lib/dequant.wgsl")),
        "attn_params" => Some(include_str!("../../shaders/lib/attn_params.wgsl")),
        _ => None,
    }
}

/// The define that selects a weight type's variant of a per-type kernel: its GGML name.
pub fn type_define(ty: GgmlType) -> &'static str {
    ty.name()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_weight_type_has_its_variants() {
        for ty in GgmlType::ALL {
            let t = type_define(ty);
            for (shader, extras) in [
                (
                    &MATVEC,
                    &[
                        &[][..],
                        &["BIAS"],
                        &["ACC"],
                        &["BIAS", "ACC"],
                        &["SWIGLU"],
                        &["SPLIT"],
                        &["BIAS", "SPLIT"],
                    ][..],
                ),
                (&MATMUL, &[&[][..], &["SWIGLU"], &["BIAS", "SPLIT"]]),
                (&EMBED, &[&[][..], &["PART"]]),
            ] {
                for extra in extras {
                    let want: Vec<&str> = std::iter::once(t).chain(extra.iter().copied()).collect();
                    assert!(shader.variants.contains(&&want[..]), "{} has no variant {want:?}", shader.name);
                }
            }
        }
        assert_eq!(MATVEC.variants.len(), 7 * GgmlType::ALL.len());
        // plain and PART for every type, POSITION for four
        assert_eq!(EMBED.variants.len(), 2 * GgmlType::ALL.len() + 4);
    }
}

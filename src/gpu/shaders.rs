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

/// Each weight type: plain, with a bias, adding into the output (the residual add fused), both,
/// as SwiGLU's stacked gate/up product, and as attention's stacked Q/K/V product split into three
/// outputs (with and without a bias).
const TYPES_AND_BIAS: &[&[&str]] = &[
    &["F32"],
    &["F16"],
    &["BF16"],
    &["Q4_0"],
    &["Q4_1"],
    &["Q8_0"],
    &["Q4_K"],
    &["Q6_K"],
    &["F32", "BIAS"],
    &["F16", "BIAS"],
    &["BF16", "BIAS"],
    &["Q4_0", "BIAS"],
    &["Q4_1", "BIAS"],
    &["Q8_0", "BIAS"],
    &["Q4_K", "BIAS"],
    &["Q6_K", "BIAS"],
    &["F32", "ACC"],
    &["F16", "ACC"],
    &["BF16", "ACC"],
    &["Q4_0", "ACC"],
    &["Q4_1", "ACC"],
    &["Q8_0", "ACC"],
    &["Q4_K", "ACC"],
    &["Q6_K", "ACC"],
    &["F32", "BIAS", "ACC"],
    &["F16", "BIAS", "ACC"],
    &["BF16", "BIAS", "ACC"],
    &["Q4_0", "BIAS", "ACC"],
    &["Q4_1", "BIAS", "ACC"],
    &["Q8_0", "BIAS", "ACC"],
    &["Q4_K", "BIAS", "ACC"],
    &["Q6_K", "BIAS", "ACC"],
    &["F32", "SWIGLU"],
    &["F16", "SWIGLU"],
    &["BF16", "SWIGLU"],
    &["Q4_0", "SWIGLU"],
    &["Q4_1", "SWIGLU"],
    &["Q8_0", "SWIGLU"],
    &["Q4_K", "SWIGLU"],
    &["Q6_K", "SWIGLU"],
    &["F32", "SPLIT"],
    &["F16", "SPLIT"],
    &["BF16", "SPLIT"],
    &["Q4_0", "SPLIT"],
    &["Q4_1", "SPLIT"],
    &["Q8_0", "SPLIT"],
    &["Q4_K", "SPLIT"],
    &["Q6_K", "SPLIT"],
    &["F32", "BIAS", "SPLIT"],
    &["F16", "BIAS", "SPLIT"],
    &["BF16", "BIAS", "SPLIT"],
    &["Q4_0", "BIAS", "SPLIT"],
    &["Q4_1", "BIAS", "SPLIT"],
    &["Q8_0", "BIAS", "SPLIT"],
    &["Q4_K", "BIAS", "SPLIT"],
    &["Q6_K", "BIAS", "SPLIT"],
];
const TYPES_AND_POSITION: &[&[&str]] = &[
    &["F32"],
    &["F16"],
    &["BF16"],
    &["Q4_0"],
    &["Q4_1"],
    &["Q8_0"],
    &["Q4_K"],
    &["Q6_K"],
    &["F32", "POSITION"],
    &["F16", "POSITION"],
    &["BF16", "POSITION"],
    &["Q8_0", "POSITION"],
    &["F32", "PART"],
    &["F16", "PART"],
    &["Q8_0", "PART"],
    &["Q4_K", "PART"],
    &["Q6_K", "PART"],
];

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

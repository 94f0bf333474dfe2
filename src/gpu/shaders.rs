//! Every kernel's WGSL source (`shaders/*.wgsl`, compiled in) and the variants it is built in.

use crate::quant::GgmlType;

pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
    /// Each variant's defines; the validation test builds every one.
    pub variants: &'static [&'static [&'static str]],
}

pub const MATVEC: Shader = Shader {
    name: "matvec",
    source: include_str!("../../shaders/matvec.wgsl"),
    variants: &[&["F32"], &["F16"], &["BF16"], &["Q4_0"], &["Q4_1"], &["Q8_0"], &["Q4_K"], &["Q6_K"]],
};

pub const RMS_NORM: Shader =
    Shader { name: "rms_norm", source: include_str!("../../shaders/rms_norm.wgsl"), variants: &[&[]] };

pub const ALL: &[Shader] = &[MATVEC, RMS_NORM];

/// The define that selects a weight type's variant of a per-type kernel.
pub fn type_define(ty: GgmlType) -> &'static str {
    match ty {
        GgmlType::F32 => "F32",
        GgmlType::F16 => "F16",
        GgmlType::BF16 => "BF16",
        GgmlType::Q4_0 => "Q4_0",
        GgmlType::Q4_1 => "Q4_1",
        GgmlType::Q8_0 => "Q8_0",
        GgmlType::Q4K => "Q4_K",
        GgmlType::Q6K => "Q6_K",
    }
}

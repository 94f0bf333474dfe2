// Element-wise ops of the forward pass over rows of n values, one thread each: a 2-D (x, y)
// grid within a row, batch rows along z (row t covers a[t·n ..]):
// #ifdef ADD: a += b (the residual); #ifdef SILU_MUL: a = silu(a) · b (SwiGLU's gate);
// #ifdef GELU: a = gelu(a), GPT-2's tanh approximation (b is bound but not read);
// #ifdef GELU_MUL: a = gelu(a) · b (GeGLU's gate); #ifdef SCALE: a *= s (no b binding).

fn gelu(v: f32) -> f32 {
    // tanh is ±1 in f32 past |15|; clamped, no implementation's tanh overflows into NaN
    return 0.5 * v * (1.0 + tanh(clamp(0.7978846 * (v + 0.044715 * v * v * v), -15.0, 15.0)));
}

struct Params {
    n: u32,
    groups_x: u32,
    s: f32,  // SCALE's factor
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read_write> a: array<f32>;  // [batch · n]
#ifndef SCALE
@group(0) @binding(1) var<storage, read> b: array<f32>;        // [batch · n]
#endif
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let c = (wid.y * p.groups_x + wid.x) * 64u + li;
    if (c >= p.n) {
        return;
    }
    let i = wid.z * p.n + c;
#ifdef ADD
    a[i] += b[i];
#endif
#ifdef SILU_MUL
    let g = a[i];
    a[i] = g / (1.0 + exp(-g)) * b[i];
#endif
#ifdef GELU
    a[i] = gelu(a[i]);
#endif
#ifdef GELU_MUL
    a[i] = gelu(a[i]) * b[i];
#endif
#ifdef SCALE
    a[i] *= p.s;
#endif
}

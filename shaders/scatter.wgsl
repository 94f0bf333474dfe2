// out[t · ld + off + r] = x[t · rows + r]: one part's rows of a product placed within a wider
// output (a head cut by rows into parts that each fit one storage binding, so each part's
// product writes its own rows and this puts them among the logits). One thread per row along
// x (and y), batch rows along z.

struct Params {
    rows: u32,      // the part's rows: x's row length
    ld: u32,        // out's row length
    off: u32,       // the part's first row within out's rows
    groups_x: u32,  // workgroups along x in the dispatch grid
}

@group(0) @binding(0) var<storage, read> x: array<f32>;          // [batch · rows]
@group(0) @binding(1) var<storage, read_write> out: array<f32>;  // [batch · ld]
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r = (wid.y * p.groups_x + wid.x) * 64u + li;
    if (r >= p.rows) {
        return;
    }
    let t = wid.z;
    out[t * p.ld + p.off + r] = x[t * p.rows + r];
}

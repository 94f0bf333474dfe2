//! `wisp soak`: long use of one engine. Many generations of four kinds in turn (a fresh greedy
//! completion, a chat turn that extends the conversation and reuses the KV cache, a sampled
//! generation with penalties and a stop string, and one abandoned after a few tokens), with
//! resident memory and the GPU's buffer and bind-group counts printed at intervals. Everything is
//! allocated at load, so after the first interval the numbers must stay flat; the long-use test
//! runs this with a bound, `scripts/soak.sh` runs it longer on the default model.

use super::{open_engine, Args};
use serde_json::json;
use wisp::chat::Message;
use wisp::sampling::SamplingParams;
use wisp::{Error, GenerateOptions, Result};

const PROMPTS: &[&str] = &[
    "The history of the printing press",
    "Write a short poem about the sea.",
    "List three prime numbers: 2, 3,",
    "Émile Zola wrote 🦀 and\n\n  code: fn main() {}",
    "Why is the sky blue?",
];

/// Resident set size now (not the peak), in MiB.
fn rss_mb() -> f64 {
    super::status_mb("VmRSS:")
}

pub fn cmd_soak(args: &Args) -> Result<()> {
    args.check_known(&[
        "--model",
        "--generations",
        "--every",
        "--max-tokens",
        "--backend",
        "--ctx",
        "--threads",
        "--numerics",
        "--json",
    ])?;
    let mut engine = open_engine(args, 256)?;
    let n: usize = args.num("--generations", 1000)?;
    let every: usize = args.num("--every", 100)?;
    let max_tokens: usize = args.num("--max-tokens", 16)?;
    if every == 0 || n < every {
        return Err(Error::arg("--every", format!("must be between 1 and --generations ({n})")));
    }
    let json = args.flag("--json");
    let mut chat: Vec<Message> = Vec::new();
    let mut first: Option<serde_json::Value> = None;
    let mut last = json!(null);
    let mut tokens = 0usize;
    for i in 0..n {
        let prompt = PROMPTS[i % PROMPTS.len()];
        let greedy = GenerateOptions { max_tokens, sampling: SamplingParams::greedy(), ..Default::default() };
        let mut on_chunk = |_: &str, _: u32| true;
        let g = match i % 4 {
            0 => {
                engine.reset();
                let ids = engine.encode(prompt)?;
                engine.generate(&ids, &greedy, &mut on_chunk)?
            }
            1 => {
                chat.push(Message::new("user", prompt));
                let mut ids = engine.chat_prompt(&chat)?;
                if ids.len() + max_tokens > engine.n_ctx() {
                    // the conversation outgrew the context: start a new one
                    chat = vec![Message::new("user", prompt)];
                    ids = engine.chat_prompt(&chat)?;
                }
                let g = engine.generate(&ids, &greedy, &mut on_chunk)?;
                chat.push(Message::new("assistant", &g.text));
                g
            }
            2 => {
                let opts = GenerateOptions {
                    max_tokens,
                    sampling: SamplingParams {
                        seed: i as u64,
                        repetition_penalty: 1.1,
                        frequency_penalty: 0.2,
                        presence_penalty: 0.1,
                        ..Default::default()
                    },
                    stop: vec![".".into()],
                    ..Default::default()
                };
                let ids = engine.encode(prompt)?;
                engine.generate(&ids, &opts, &mut on_chunk)?
            }
            _ => {
                let ids = engine.encode(prompt)?;
                let mut left = 3;
                engine.generate(&ids, &greedy, &mut |_, _| {
                    left -= 1;
                    left > 0
                })?
            }
        };
        tokens += g.ids.len();
        if (i + 1) % every == 0 {
            let (buffers, bind_groups) = engine.gpu().map_or((0, 0), |g| g.gpu().created());
            let s = json!({"generation": i + 1, "tokens": tokens, "rss_mb": rss_mb(),
                "gpu_buffers": buffers, "gpu_bind_groups": bind_groups,
                "cached_tokens": engine.cached_tokens().len()});
            if json {
                println!("{s}");
            } else {
                println!(
                    "after {:>6} generations ({tokens} tokens): RSS {:.1} MiB, GPU buffers {buffers}, bind groups {bind_groups}",
                    i + 1,
                    s["rss_mb"].as_f64().unwrap_or(0.0)
                );
            }
            first.get_or_insert_with(|| s.clone());
            last = s;
        }
    }
    let first = first.unwrap_or_default();
    let growth = |k: &str| last[k].as_f64().unwrap_or(0.0) - first[k].as_f64().unwrap_or(0.0);
    let summary = json!({"generations": n, "tokens": tokens,
        "rss_growth_mb": growth("rss_mb"), "gpu_buffer_growth": growth("gpu_buffers"),
        "gpu_bind_group_growth": growth("gpu_bind_groups"),
        "backend": if engine.gpu().is_some() { "gpu" } else { "cpu" }});
    if json {
        println!("{summary}");
    } else {
        println!(
            "{n} generations, {tokens} tokens: RSS grew {:+.2} MiB after the first {every}; GPU buffers {:+}, bind groups {:+}",
            growth("rss_mb"),
            growth("gpu_buffers"),
            growth("gpu_bind_groups")
        );
    }
    Ok(())
}

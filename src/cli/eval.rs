//! `wisp eval`: the model answers each item of a JSONL set greedily (through its chat template),
//! and the report scores the answers against the references (corpus and sentence BLEU as
//! sacreBLEU computes them, ROUGE-1/2/L F1 as rouge-score does) and the references' perplexity
//! given their prompts; a table, or JSON with `--json`. The work is `wisp::eval`'s.

use super::{load_tokenizer, model_path, open_engine, Args};
use wisp::eval::{EvalOptions, Input};
use wisp::{Error, Result};

pub fn cmd_eval(args: &Args) -> Result<()> {
    args.check_known(&[
        "--model",
        "--data",
        "--max-tokens",
        "--json",
        "--ctx",
        "--threads",
        "--backend",
        "--numerics",
    ])?;
    let data = args.get("--data").ok_or_else(|| {
        Error::arg(
            "--data",
            "is required: a JSONL file, one {\"prompt\" or \"messages\", \"reference\"} object per line",
        )
    })?;
    let max_tokens: i64 = args.num("--max-tokens", 128)?;
    if max_tokens < 1 {
        return Err(Error::arg("--max-tokens", format!("{max_tokens} must be at least 1")));
    }
    // the set is read and checked before the model loads
    let bytes = std::fs::read(data).map_err(|e| Error::io(data, e))?;
    let items = wisp::eval::parse_jsonl(&bytes, data)?;
    if let Some(it) = items.iter().find(|it| matches!(it.input, Input::Messages(_))) {
        wisp::chat::check_chat_support(&load_tokenizer(&model_path(args)?)?).map_err(|e| match e {
            Error::Template(why) => Error::Template(format!(
                "{data} line {}: {why}; this item has \"messages\", which need one (a plain \"prompt\" \
                 is continued as written)",
                it.line
            )),
            e => e,
        })?;
    }
    let mut engine = open_engine(args, 0)?;
    let chat = wisp::eval::uses_chat_template(&engine);
    eprintln!(
        "wisp eval: {} items from {data}, {}, greedy, at most {max_tokens} tokens each",
        items.len(),
        if chat {
            "rendered with the model's chat template"
        } else {
            "prompts continued as written (the model has no chat template)"
        }
    );
    let opts = EvalOptions { max_tokens: max_tokens as usize };
    let report = wisp::eval::evaluate(&mut engine, &items, &opts, &mut |done, total, o| {
        eprintln!(
            "wisp eval: {done}/{total} (line {}: {} generated tokens, {})",
            o.line, o.generated_tokens, o.finish
        );
        true
    })?;
    if args.flag("--json") {
        let mut j = serde_json::to_value(&report).map_err(|e| Error::Other(format!("report: {e}")))?;
        if let Some(obj) = j.as_object_mut() {
            obj.insert("data".into(), data.into());
            obj.insert("max_tokens".into(), max_tokens.into());
            obj.insert("chat_template".into(), chat.into());
        }
        println!("{j}");
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

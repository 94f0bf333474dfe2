//! Evaluation (`wisp::eval`, `wisp eval`): BLEU and ROUGE equal to sacreBLEU's and rouge-score's
//! on the pairs of `tests/fixtures/eval/metrics.json` (scripts/make_eval_fixture.py), the JSONL
//! reader's errors, and the CLI on a three-item set of the project's instruction set with the
//! default model: its JSON's shape, its metrics recomputed from the texts it returned, its
//! perplexities equal to the library's, and its errors.

mod common;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use wisp::eval::{self, Input, Outcome};

fn fixture() -> Value {
    common::read_json("eval/metrics.json")
}

/// A fixture float: a Python repr() string, parsed exactly.
fn num(v: &Value) -> f64 {
    v.as_str().unwrap_or_else(|| panic!("a repr string: {v}")).parse().unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array().unwrap().iter().map(|s| s.as_u64().unwrap()).collect()
}

/// Within 1e-9, relative to the size (for values that went through exp and log).
fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-9 * want.abs().max(1.0)
}

/// BLEU against sacreBLEU's: integer statistics exactly, precisions bit for bit (plain
/// arithmetic), the brevity penalty and the score within 1e-9 (libm's exp and log). Returns how
/// many of the two libm values were bit-identical.
fn check_bleu(got: &eval::Bleu, want: &Value, what: &str) -> usize {
    assert_eq!(got.counts.to_vec(), u64s(&want["counts"]), "{what}: counts");
    assert_eq!(got.totals.to_vec(), u64s(&want["totals"]), "{what}: totals");
    assert_eq!(got.sys_len, want["sys_len"].as_u64().unwrap(), "{what}: sys_len");
    assert_eq!(got.ref_len, want["ref_len"].as_u64().unwrap(), "{what}: ref_len");
    let precisions: Vec<f64> = want["precisions"].as_array().unwrap().iter().map(num).collect();
    for (n, (g, w)) in got.precisions.iter().zip(&precisions).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "{what}: precision {}: {g} vs {w}", n + 1);
    }
    let (bp, score) = (num(&want["bp"]), num(&want["score"]));
    assert!(close(got.bp, bp), "{what}: bp {} vs {bp}", got.bp);
    assert!(close(got.score, score), "{what}: score {} vs {score}", got.score);
    (got.bp.to_bits() == bp.to_bits()) as usize + (got.score.to_bits() == score.to_bits()) as usize
}

#[test]
fn tokenizers_equal_sacrebleu_13a_and_rouge_score() {
    let f = fixture();
    for p in f["pairs"].as_array().unwrap() {
        for side in ["hypothesis", "reference"] {
            let text = p[side].as_str().unwrap();
            assert_eq!(eval::tokenize_13a(text), strings(&p["tokens_13a"][side]), "13a of {text:?}");
            assert_eq!(eval::tokenize_rouge(text), strings(&p["tokens_rouge"][side]), "rouge of {text:?}");
        }
    }
}

#[test]
fn sentence_bleu_and_rouge_equal_the_reference_implementations() {
    let f = fixture();
    let pairs = f["pairs"].as_array().unwrap();
    assert!(pairs.len() >= 40, "{} pairs", pairs.len());
    let mut exact = 0;
    for p in pairs {
        let (h, r) = (p["hypothesis"].as_str().unwrap(), p["reference"].as_str().unwrap());
        let what = format!("{h:?} vs {r:?}");
        exact += check_bleu(&eval::sentence_bleu(h, r), &p["sentence_bleu"], &what);
        let got = eval::rouge(h, r);
        for (k, g) in [("rouge1", got.rouge1), ("rouge2", got.rouge2), ("rougeL", got.rouge_l)] {
            for (field, v) in [("precision", g.precision), ("recall", g.recall), ("fmeasure", g.fmeasure)] {
                let w = num(&p[k][field]);
                assert_eq!(v.to_bits(), w.to_bits(), "{what}: {k} {field} {v} vs {w}");
            }
        }
    }
    eprintln!("sentence BLEU: {exact} of {} scores and brevity penalties bit-identical", 2 * pairs.len());
}

#[test]
fn corpus_bleu_and_rouge_means_equal_the_reference_implementations() {
    let f = fixture();
    let pairs = f["pairs"].as_array().unwrap();
    for c in f["corpora"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let idx: Vec<usize> = u64s(&c["indices"]).into_iter().map(|i| i as usize).collect();
        let hyps: Vec<&str> = idx.iter().map(|&i| pairs[i]["hypothesis"].as_str().unwrap()).collect();
        let refs: Vec<&str> = idx.iter().map(|&i| pairs[i]["reference"].as_str().unwrap()).collect();
        check_bleu(&eval::corpus_bleu(&hyps, &refs).unwrap(), &c["bleu"], name);
        // the report over the same texts: the same corpus BLEU, the rouge-score F1 means, and
        // each item's sentence BLEU
        let outcomes: Vec<Outcome> = idx
            .iter()
            .map(|&i| Outcome {
                id: None,
                line: i + 1,
                output: hyps[idx.iter().position(|&j| j == i).unwrap()].into(),
                reference: pairs[i]["reference"].as_str().unwrap().into(),
                prompt_tokens: 1,
                generated_tokens: 1,
                finish: "eog".into(),
                reference_tokens: 2,
                reference_nll: 1.5,
            })
            .collect();
        let rep = eval::report(&outcomes).unwrap();
        check_bleu(&rep.corpus.bleu, &c["bleu"], name);
        let means = &c["rouge_mean_f"];
        assert_eq!(rep.corpus.rouge1.to_bits(), num(&means["rouge1"]).to_bits(), "{name}");
        assert_eq!(rep.corpus.rouge2.to_bits(), num(&means["rouge2"]).to_bits(), "{name}");
        assert_eq!(rep.corpus.rouge_l.to_bits(), num(&means["rougeL"]).to_bits(), "{name}");
        // Σ 1.5 / Σ 2 is exactly 0.75
        assert_eq!(rep.corpus.perplexity, 0.75f64.exp());
        assert_eq!(rep.corpus.reference_tokens, 2 * idx.len());
        for (it, &i) in rep.items.iter().zip(&idx) {
            assert_eq!(
                it.bleu.to_bits(),
                eval::sentence_bleu(&it.outcome.output, &it.outcome.reference).score.to_bits()
            );
            assert!(close(it.bleu, num(&pairs[i]["sentence_bleu"]["score"])), "{name} item {i}");
            assert_eq!(it.rouge_l.to_bits(), num(&pairs[i]["rougeL"]["fmeasure"]).to_bits());
        }
    }
    assert!(eval::corpus_bleu(&["a"], &[]).is_err(), "unequal lengths are an error");
    assert!(eval::report(&[]).is_err(), "an empty report is an error");
}

fn parse_err(text: &str) -> String {
    match eval::parse_jsonl(text.as_bytes(), "set.jsonl") {
        Ok(items) => panic!("{text:?} parsed: {items:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn jsonl_reader_names_the_line_of_each_error() {
    let ok = "\u{feff}{\"prompt\": \"Hi\", \"reference\": \"Hello\", \"id\": 7, \"topic\": \"x\"}\r\n\n  \n\
              {\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"2+2?\"}], \"reference\": \"4\"}\n";
    let items = eval::parse_jsonl(ok.as_bytes(), "set.jsonl").unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!((items[0].line, items[1].line), (1, 4), "blank lines skipped, lines counted");
    assert_eq!(items[0].input, Input::Prompt("Hi".into()));
    assert_eq!(items[0].id, Some(serde_json::json!(7)));
    assert!(matches!(&items[1].input, Input::Messages(m) if m.len() == 2 && m[1].content == "2+2?"));
    assert_eq!(items[1].reference, "4");

    let good = r#"{"prompt": "a", "reference": "b"}"#.to_string() + "\n";
    let cases: &[(String, &str)] = &[
        (
            format!("{good}{good}{}\n", r#"{"prompt": "a", "reference": "b""#),
            "malformed set.jsonl line 3: not a JSON object: EOF",
        ),
        (format!("{good}{}\n", r#"{"prompt": "a"}"#), r#"malformed set.jsonl line 2: has no "reference""#),
        (
            r#"{"prompt": "a", "reference": "  "}"#.into(),
            r#"malformed set.jsonl line 1: "reference" is empty"#,
        ),
        (r#"{"prompt": "a", "reference": 3}"#.into(), r#""reference" must be a string, got a number"#),
        (format!("{good}\n[1, 2]\n"), "malformed set.jsonl line 3: expected a JSON object"),
        (r#"{"reference": "b"}"#.into(), r#"line 1: has neither "prompt""#),
        (
            r#"{"prompt": "a", "messages": [], "reference": "b"}"#.into(),
            r#"has both "prompt" and "messages""#,
        ),
        (r#"{"messages": [], "reference": "b"}"#.into(), r#""messages" is empty"#),
        (
            r#"{"messages": [{"role": "user"}], "reference": "b"}"#.into(),
            r#"message 1 needs a string "content""#,
        ),
        (r#"{"prompt": "", "reference": "b"}"#.into(), r#""prompt" is empty"#),
        (String::new(), "malformed set.jsonl: no items"),
        ("\n \n\r\n".into(), "malformed set.jsonl: no items"),
    ];
    for (text, want) in cases {
        let e = parse_err(text);
        assert!(e.contains(want), "{text:?}: {e:?} should contain {want:?}");
    }
    let mut bytes = format!("{good}{good}").into_bytes();
    bytes.extend_from_slice(b"{\"prompt\": \"\xff\", \"reference\": \"b\"}\n");
    let e = eval::parse_jsonl(&bytes, "set.jsonl").unwrap_err().to_string();
    assert_eq!(e, "malformed set.jsonl line 3: not UTF-8 text");
}

// --- the CLI with the default model ---

fn wisp(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wisp")).args(args).output().expect("wisp runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn instruction_set() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/eval/instructions.jsonl")
}

/// A file under the temporary directory, unique to this process and `name`.
fn temp(name: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("wisp-eval-{}-{name}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn instruction_set_is_valid() {
    let bytes = std::fs::read(instruction_set()).unwrap();
    let items = eval::parse_jsonl(&bytes, "instructions.jsonl").unwrap();
    assert!((20..=30).contains(&items.len()), "{} items", items.len());
    assert!(items.iter().any(|i| matches!(i.input, Input::Messages(_))), "some items are conversations");
}

/// Three items of the instruction set (one a conversation) through `wisp eval --json`: the shape,
/// every BLEU/ROUGE figure recomputed from the texts it returned, and the texts and perplexities
/// equal to the library's own run of the same items.
#[test]
fn cli_eval_reports_metrics_that_recompute_from_its_texts() {
    let model = common::default_model();
    let all = std::fs::read_to_string(instruction_set()).unwrap();
    let lines: Vec<&str> = all.lines().filter(|l| !l.trim().is_empty()).collect();
    let conv = lines.iter().position(|l| l.contains("\"messages\"")).unwrap();
    let picked = [lines[0], lines[1], lines[conv]].join("\n") + "\n";
    let data = temp("three.jsonl", &picked);
    let (ok, out, err) = wisp(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--max-tokens",
        "12",
        "--backend",
        "cpu",
        "--json",
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("3/3"), "progress on stderr: {err}");
    let j: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["chat_template"], true);
    assert_eq!(j["max_tokens"], 12);
    let items = j["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let c = &j["corpus"];
    for key in
        ["items", "bleu", "bleu_signature", "rouge1", "rouge2", "rougeL", "perplexity", "reference_tokens"]
    {
        assert!(c.get(key).is_some(), "corpus.{key} in {c}");
    }
    for key in ["score", "counts", "totals", "precisions", "bp", "sys_len", "ref_len"] {
        assert!(c["bleu"].get(key).is_some(), "corpus.bleu.{key} in {c}");
    }
    assert_eq!(c["bleu_signature"], "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp");
    let f = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("a number: {v}"));
    // serde_json's float parse can be an ulp off the printed value: compare within 1e-12
    let same = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
    let (mut outs, mut refs) = (Vec::new(), Vec::new());
    let (mut nll, mut tokens) = (0.0, 0);
    for it in items {
        for key in [
            "line",
            "output",
            "reference",
            "prompt_tokens",
            "generated_tokens",
            "finish",
            "reference_tokens",
            "reference_nll",
            "bleu",
            "rouge1",
            "rouge2",
            "rougeL",
            "perplexity",
        ] {
            assert!(it.get(key).is_some(), "item.{key} in {it}");
        }
        let (o, r) = (it["output"].as_str().unwrap(), it["reference"].as_str().unwrap());
        assert!(!o.trim().is_empty(), "the model answered: {it}");
        assert!(it["generated_tokens"].as_u64().unwrap() <= 12, "{it}");
        let rg = eval::rouge(o, r);
        assert!(same(f(&it["bleu"]), eval::sentence_bleu(o, r).score), "{it}");
        assert!(same(f(&it["rouge1"]), rg.rouge1.fmeasure), "{it}");
        assert!(same(f(&it["rouge2"]), rg.rouge2.fmeasure), "{it}");
        assert!(same(f(&it["rougeL"]), rg.rouge_l.fmeasure), "{it}");
        let (n, t) = (f(&it["reference_nll"]), it["reference_tokens"].as_u64().unwrap() as usize);
        assert!(t > 0 && n > 0.0, "{it}");
        assert!(same(f(&it["perplexity"]), (n / t as f64).exp()), "{it}");
        let ppl = f(&it["perplexity"]);
        assert!(ppl > 1.0 && ppl.is_finite(), "{it}");
        outs.push(o.to_string());
        refs.push(r.to_string());
        nll += n;
        tokens += t;
    }
    let o: Vec<&str> = outs.iter().map(String::as_str).collect();
    let r: Vec<&str> = refs.iter().map(String::as_str).collect();
    let bleu = eval::corpus_bleu(&o, &r).unwrap();
    assert!(same(f(&c["bleu"]["score"]), bleu.score), "{c}");
    assert_eq!(u64s(&c["bleu"]["counts"]), bleu.counts.to_vec());
    assert_eq!(u64s(&c["bleu"]["totals"]), bleu.totals.to_vec());
    let mean =
        |k: fn(&eval::Rouge) -> f64| o.iter().zip(&r).map(|(a, b)| k(&eval::rouge(a, b))).sum::<f64>() / 3.0;
    assert!(same(f(&c["rouge1"]), mean(|x| x.rouge1.fmeasure)), "{c}");
    assert!(same(f(&c["rouge2"]), mean(|x| x.rouge2.fmeasure)), "{c}");
    assert!(same(f(&c["rougeL"]), mean(|x| x.rouge_l.fmeasure)), "{c}");
    assert_eq!(c["reference_tokens"].as_u64().unwrap() as usize, tokens);
    assert!(same(f(&c["perplexity"]), (nll / tokens as f64).exp()), "{c}");

    // the library on the same items: the same answers and the same reference likelihoods
    let mut engine = common::engine(0);
    let items_lib = eval::parse_jsonl(picked.as_bytes(), "three.jsonl").unwrap();
    let mut seen = 0;
    let rep =
        eval::evaluate(&mut engine, &items_lib, &eval::EvalOptions { max_tokens: 12 }, &mut |d, t, _| {
            seen = d;
            assert_eq!(t, 3);
            true
        })
        .unwrap();
    assert_eq!(seen, 3);
    for (lib, cli) in rep.items.iter().zip(items) {
        assert_eq!(lib.outcome.output, cli["output"].as_str().unwrap());
        assert_eq!(lib.outcome.reference_tokens as u64, cli["reference_tokens"].as_u64().unwrap());
        assert!(same(f(&cli["reference_nll"]), lib.outcome.reference_nll), "{cli} vs {:?}", lib.outcome);
    }

    // the reference's likelihood through another path: `Engine::perplexity` over the prompt alone
    // and over the prompt followed by the reference, one window each (batched rows, not steps);
    // the difference of the two NLL sums is the reference's (equal to ~1e-14 here)
    let prepared = eval::prepare(&engine, &items_lib).unwrap();
    for (p, lib) in prepared.iter().zip(&rep.items) {
        assert!(!engine.tokenizer.add_bos || engine.tokenizer.bos == Some(p.prompt[0]));
        let whole: Vec<u32> = p.prompt.iter().chain(&p.reference).copied().collect();
        let sum = |e: &mut wisp::Engine, ids: &[u32]| {
            let (ppl, n) = e.perplexity(ids, ids.len(), false).unwrap();
            assert_eq!(n, ids.len() - 1);
            ppl.ln() * n as f64
        };
        let want = sum(&mut engine, &whole) - sum(&mut engine, &p.prompt);
        let got = lib.outcome.reference_nll;
        eprintln!("reference NLL, line {}: steps {got}, perplexity windows {want}", lib.outcome.line);
        assert!((got - want).abs() <= 1e-9 * want.max(1.0), "line {}: {got} vs {want}", lib.outcome.line);
    }

    // the table: a row per item and the corpus lines
    let (ok, out, err) = wisp(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--max-tokens",
        "12",
        "--backend",
        "cpu",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("ROUGE-1") && out.contains("3 items"), "{out}");
    assert!(out.contains(&format!("BLEU     {:.2}", rep.corpus.bleu.score)), "{out}");
    assert!(out.contains(&format!("{:.3} ({tokens} tokens)", rep.corpus.perplexity)), "{out}");
    let _ = std::fs::remove_file(&data);
}

#[test]
fn cli_eval_refuses_bad_sets_clearly() {
    let model = common::default_model();
    let model = model.to_str().unwrap();
    let missing = std::env::temp_dir().join("wisp-eval-no-such-file.jsonl");
    let cases: Vec<(Vec<String>, String)> = vec![
        (vec![], "invalid argument --data: is required".into()),
        (vec!["--data".into(), missing.to_str().unwrap().into()], "I/O error on".into()),
        (
            vec![
                "--data".into(),
                temp("bad.jsonl", "{\"prompt\": \"a\", \"reference\": \"b\"}\n{oops}\n")
                    .to_str()
                    .unwrap()
                    .into(),
            ],
            "line 2: not a JSON object".into(),
        ),
        (
            vec!["--data".into(), temp("noref.jsonl", "{\"prompt\": \"a\"}\n").to_str().unwrap().into()],
            "line 1: has no \"reference\"".into(),
        ),
        (vec!["--data".into(), temp("empty.jsonl", "").to_str().unwrap().into()], "no items".into()),
        (
            vec![
                "--data".into(),
                temp("ok.jsonl", "{\"prompt\": \"a\", \"reference\": \"b\"}\n").to_str().unwrap().into(),
                "--max-tokens".into(),
                "0".into(),
            ],
            "invalid argument --max-tokens: 0 must be at least 1".into(),
        ),
        (
            vec![
                "--data".into(),
                temp(
                    "long.jsonl",
                    &format!("{{\"prompt\": \"a\", \"reference\": \"{}\"}}\n", "word ".repeat(300)),
                )
                .to_str()
                .unwrap()
                .into(),
                "--ctx".into(),
                "256".into(),
            ],
            "long.jsonl line 1: the prompt (".into(),
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["eval", "--model", model, "--backend", "cpu"];
        args.extend(extra.iter().map(String::as_str));
        let (ok, out, err) = wisp(&args);
        assert!(!ok, "{args:?} should fail: {out}");
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("wisp: error: ") && last.contains(&want),
            "{args:?}: {err:?} should end with {want:?}"
        );
        assert!(out.is_empty(), "{out}");
    }
}

/// A base model (Gemma 3 270M, no chat template): a conversation is refused before the weights
/// load, naming the line; plain prompts are continued as written.
#[test]
fn cli_eval_on_a_base_model() {
    let gemma = wisp::fetch::cached_path(wisp::fetch::known("gemma3-270m").unwrap());
    assert!(
        gemma.exists(),
        "Gemma 3 270M is not cached: run `wisp fetch gemma3-270m` (or scripts/setup.sh --test)"
    );
    let g = gemma.to_str().unwrap();
    let conv = temp(
        "conv.jsonl",
        "{\"prompt\": \"The capital of France is\", \"reference\": \"Paris\"}\n\
         {\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"reference\": \"Hello\"}\n",
    );
    let (ok, _, err) = wisp(&["eval", "--model", g, "--data", conv.to_str().unwrap(), "--backend", "cpu"]);
    assert!(!ok);
    assert!(
        err.contains("line 2") && err.contains("no chat template") && err.contains("\"messages\""),
        "{err}"
    );
    assert!(!err.contains("backend cpu"), "refused before loading the model: {err}");
    let plain =
        temp("plain.jsonl", "{\"prompt\": \"The capital of France is\", \"reference\": \"Paris.\"}\n");
    let (ok, out, err) = wisp(&[
        "eval",
        "--model",
        g,
        "--data",
        plain.to_str().unwrap(),
        "--max-tokens",
        "4",
        "--backend",
        "cpu",
        "--json",
    ]);
    assert!(ok, "{err}");
    let j: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["chat_template"], false, "{j}");
    assert!(err.contains("continued as written"), "{err}");
    assert!(j["items"][0]["generated_tokens"].as_u64().unwrap() <= 4, "{j}");
    let _ = (std::fs::remove_file(conv), std::fs::remove_file(plain));
}

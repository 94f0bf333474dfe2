//! GBNF grammars: llama.cpp's own example grammars parse (cached from the llama-cpp-python sdist
//! by `scripts/setup.sh --test`), texts are accepted or rejected as the grammar says, malformed
//! grammars are refused naming their line, and the allowed-token mask the trie walk computes
//! equals feeding each token on its own.

mod common;
use std::sync::Arc;
use wisp::grammar::{Grammar, Matcher, TokenTrie};

fn llamacpp_grammar(name: &str) -> String {
    let path = wisp::fetch::cache_dir().join("llamacpp-grammars").join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh --test)", path.display()))
}

fn g(text: &str) -> Arc<Grammar> {
    Arc::new(Grammar::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}")))
}

fn accepts(g: &Arc<Grammar>, text: &str) -> bool {
    Matcher::accepts_text(g.clone(), text)
}

#[test]
fn every_llamacpp_example_grammar_parses() {
    let dir = wisp::fetch::cache_dir().join("llamacpp-grammars");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh --test)", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".gbnf"))
        .collect();
    names.sort();
    assert!(names.len() >= 8, "{names:?}");
    for n in &names {
        Grammar::parse(&llamacpp_grammar(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
    }
    println!("parsed {} grammars: {names:?}", names.len());
}

#[test]
fn llamacpps_json_grammar_accepts_json_and_rejects_the_rest() {
    let json = g(&llamacpp_grammar("json.gbnf"));
    for ok in [
        "{}",
        "{\"a\": 1}",
        "{\"a\": [1, 2.5, -3e4, true, false, null], \"b\": {\"c\": \"x\\\"y\\u00e9\"}}",
        "{\n  \"k\": \"naïve café 日本\"\n}",
        "{\"e\": []} ",
    ] {
        assert!(accepts(&json, ok), "should accept {ok:?}");
    }
    for bad in
        ["", "[]", "{\"a\" 1}", "{\"a\": 01x}", "{\"a\": tru}", "{'a': 1}", "{\"a\": \"\u{1}\"}", "{} {}"]
    {
        assert!(!accepts(&json, bad), "should reject {bad:?}");
    }
    let arith = g(&llamacpp_grammar("arithmetic.gbnf"));
    assert!(accepts(&arith, "1+2*(x3 -4)=7\n"));
    assert!(!accepts(&arith, "1+=2\n"));
    let list = g(&llamacpp_grammar("list.gbnf"));
    assert!(accepts(&list, "- one\n- two\n"));
    assert!(!accepts(&list, "- one\n-two\n"));
}

#[test]
fn repetitions_classes_and_escapes() {
    let r = g("root ::= [a-c]{2,3} \"-\" [^0-9\\n]? x+\nx ::= \"\\x41\" | \"\\u00e9\" | \"\\t\"");
    for ok in ["ab-A", "abc-zAé\t", "ab-\u{e9}A"] {
        assert!(accepts(&r, ok), "{ok:?}");
    }
    for bad in ["a-A", "abcd-A", "ab-5A", "ab-", "ab-\nA"] {
        assert!(!accepts(&r, bad), "{bad:?}");
    }
    let exact = g("root ::= \"ab\"{3}");
    assert!(accepts(&exact, "ababab") && !accepts(&exact, "abab") && !accepts(&exact, "abababab"));
    let open = g("root ::= \"a\"{2,} | .");
    assert!(
        accepts(&open, "aa") && accepts(&open, "aaaaa") && accepts(&open, "日") && !accepts(&open, "a b")
    );
    // comments, rules spread over lines inside groups, a rule referring to itself on the right
    let nested = g("# a comment\nroot ::= (\n  \"(\" root \")\"\n  | \"x\"\n) # trailing\n");
    assert!(accepts(&nested, "((x))") && !accepts(&nested, "((x)"));
}

#[test]
fn malformed_grammars_are_refused_naming_the_line() {
    for (text, want) in [
        ("root ::= \"a\"\nfoo = \"b\"", "line 2"),
        ("root ::= undefined-rule", "undefined rule 'undefined-rule'"),
        ("root ::= \"abc", "unterminated literal"),
        ("root ::= [abc", "unterminated character class"),
        ("root ::= \"\\q\"", "unknown escape"),
        ("item ::= \"a\"", "no 'root' rule"),
        ("root ::= root \"a\" | \"b\"", "left recursion in rule 'root'"),
        ("root ::= a\na ::= b? a \"x\"\nb ::= \"y\"", "left recursion in rule 'a'"),
        ("root ::= \"a\"{5000}", "repetition count over 1000"),
        ("root ::= \"a\"{3,2}", "maximum is under its minimum"),
        ("root ::= * \"a\"", "expecting an item before '*'"),
        ("root ::= \"a\"\nroot ::= \"b\"", "defined twice"),
        ("root ::= <[1000]>", "token references"),
        ("root ::= ( \"a\" ", "expecting ')'"),
        ("\n\nroot ::= \"a\" )", "line 3, column 14"),
    ] {
        let e = Grammar::parse(text).expect_err(text).to_string();
        assert!(e.starts_with("grammar: ") && e.contains(want), "{text:?}: {e}");
    }
    let huge = "root ::= \"a\"\n".repeat(200_000);
    assert!(Grammar::parse(&huge).unwrap_err().to_string().contains("grammar bytes"));
}

/// A token that ends inside a UTF-8 character is allowed when the character it begins can be
/// allowed, and its bytes carry into the next token.
#[test]
fn tokens_split_inside_a_character() {
    let gr = g("root ::= \"é\" [a-z]");
    let vocab: Vec<(u32, Vec<u8>)> =
        vec![(0, vec![0xC3]), (1, vec![0xA9, b'x']), (2, vec![0xC3, 0xA8]), (3, "é".into()), (4, vec![0xA9])];
    let trie = TokenTrie::new(vocab.into_iter(), 5);
    let mut m = Matcher::new(gr.clone());
    let allowed = |mask: &[u64]| (0..5u32).filter(|&t| mask[0] >> t & 1 == 1).collect::<Vec<_>>();
    assert_eq!(allowed(&m.allowed(&trie)), [0, 3], "a lead byte of é, or é");
    m.accept(&[0xC3]).unwrap();
    assert!(!m.is_complete());
    assert_eq!(allowed(&m.allowed(&trie)), [1, 4], "the continuations that finish é");
    m.accept(&[0xA9, b'x']).unwrap();
    assert!(m.is_complete() && !m.can_continue());
    assert!(m.accept(b"y").is_err());
}

/// The trie walk's mask equals feeding every token of the default model's vocabulary on its own,
/// at each step of a JSON text (inside strings, numbers, between values, after the end).
#[test]
fn the_allowed_mask_equals_feeding_each_token() {
    let e = common::engine(64);
    let trie = TokenTrie::from_tokenizer(&e.tokenizer, e.model.n_vocab);
    let json = g(&llamacpp_grammar("json.gbnf"));
    let text = "{\"name\": \"Ada Lovelace\", \"born\": 1815, \"tags\": [\"math\", true]}";
    let ids = e.tokenizer.encode(text, false).unwrap();
    let mut m = Matcher::new(json.clone());
    let mut steps = 0;
    for (step, &id) in ids.iter().enumerate() {
        if step % 3 == 0 {
            let mask = m.allowed(&trie);
            for t in 0..e.model.n_vocab as u32 {
                let bytes = e.tokenizer.token_bytes(t, false);
                // the same state fed this token alone: a fresh matcher over the text so far
                let mut alone = Matcher::new(json.clone());
                let so_far: Vec<u8> =
                    ids[..step].iter().flat_map(|&i| e.tokenizer.token_bytes(i, false).to_vec()).collect();
                if !so_far.is_empty() {
                    alone.accept(&so_far).unwrap();
                }
                let ok = !bytes.is_empty() && alone.accept(bytes).is_ok();
                assert_eq!(
                    mask[t as usize / 64] >> (t % 64) & 1 == 1,
                    ok,
                    "step {step}: token {t} {bytes:?}"
                );
            }
            steps += 1;
        }
        let bytes = e.tokenizer.token_bytes(id, false);
        m.accept(bytes).unwrap_or_else(|err| panic!("step {step}: {err}"));
    }
    assert!(m.is_complete());
    assert!(steps >= 5);
}

/// A near-tie under the mask: ours and llama.cpp's logits differ by ~0.15 on average (up to ~1.1:
/// tests/golden_llamacpp.rs), so where our two best allowed tokens are closer than this either
/// may be llama.cpp's pick.
const NEAR_TIE: f32 = 0.5;

/// Greedy decoding under a grammar against llama.cpp's (`LlamaGrammar`, golden from
/// scripts/make_grammar_fixture.py): teacher-forced on llama.cpp's ids, each of its tokens is one
/// our grammar allows and our masked argmax unless the step is a near-tie; its end comes where
/// our grammar is complete; and free-running, our greedy ids equal its up to the first near-tie.
#[test]
fn greedy_under_a_grammar_equals_llamacpp() {
    let f = common::read_json("llamacpp_grammar.json");
    let mut e = common::engine(512);
    e.set_numerics(wisp::cpu::Numerics::LlamaCpp);
    let trie = TokenTrie::from_tokenizer(&e.tokenizer, e.model.n_vocab);
    for case in f["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let text = if let Some(t) = case.get("gbnf") {
            t.as_str().unwrap().to_string()
        } else if let Some(schema) = case.get("schema") {
            // the same grammar text llama.cpp was given
            let ours = wisp::grammar::json_schema::json_schema_str_to_gbnf(schema.as_str().unwrap()).unwrap();
            assert_eq!(ours, case["gbnf_from_schema"].as_str().unwrap(), "{name}: the schema's grammar");
            ours
        } else {
            llamacpp_grammar(case["file"].as_str().unwrap())
        };
        let gr = g(&text);
        let prompt = common::ids(&case["prompt_ids"]);
        let want = common::ids(&case["ids"]);
        // teacher-forced
        let mut m = Matcher::new(gr.clone());
        e.reset();
        let mut logits = e.prefill(&prompt).unwrap().to_vec();
        let mut first_tie = None;
        for (i, &t) in want.iter().enumerate() {
            let mask = m.allowed(&trie);
            let allowed = |x: usize| mask[x / 64] >> (x % 64) & 1 == 1;
            assert!(
                allowed(t as usize),
                "{name} step {i}: llama.cpp's token {t} is not allowed by our grammar"
            );
            let best = (0..logits.len())
                .filter(|&x| allowed(x))
                .max_by(|&a, &b| logits[a].total_cmp(&logits[b]).then(b.cmp(&a)))
                .unwrap();
            let margin = logits[best] - logits[t as usize];
            if best != t as usize {
                assert!(
                    margin <= NEAR_TIE,
                    "{name} step {i}: our pick {best} over llama.cpp's {t} by {margin}"
                );
                first_tie.get_or_insert(i);
            } else {
                // our own runner-up among the allowed
                let second = (0..logits.len())
                    .filter(|&x| allowed(x) && x != best)
                    .map(|x| logits[x])
                    .fold(f32::NEG_INFINITY, f32::max);
                if logits[best] - second <= NEAR_TIE {
                    first_tie.get_or_insert(i);
                }
            }
            m.accept(e.tokenizer.token_bytes(t, false)).unwrap();
            logits = e.step(t).unwrap().to_vec();
        }
        if want.len() < 48 {
            assert!(m.is_complete(), "{name}: llama.cpp ended where our grammar is not complete");
        }
        // free-running
        e.reset();
        let opts = wisp::GenerateOptions {
            max_tokens: 48,
            sampling: wisp::sampling::SamplingParams::greedy(),
            grammar: Some(gr.clone()),
            ..Default::default()
        };
        let got = e.generate(&prompt, &opts, &mut |_, _| true).unwrap();
        let agree = first_tie.unwrap_or(want.len());
        let same = got.ids.iter().zip(&want).take_while(|(a, b)| a == b).count();
        println!(
            "{name}: {} tokens, identical for {same} (first near-tie at {agree}): {:?}",
            want.len(),
            got.text
        );
        assert!(same >= agree, "{name}: ours {:?} llama.cpp {:?}", got.text, case["text"]);
        if first_tie.is_none() {
            assert_eq!(got.ids, want, "{name}");
        }
        // whatever came out is in the grammar's language (or a prefix of it at max_tokens)
        let mut check = Matcher::new(gr.clone());
        check.accept(got.text.as_bytes()).unwrap();
    }
}

/// On the GPU the grammar's allowed set goes with each step and the GPU picks within it: greedy
/// and sampled generations equal the CPU's, and a greedy step reads back its token id only.
#[test]
fn gpu_picks_within_the_grammar() {
    #[path = "common/gpu.rs"]
    mod gpu_env;
    let Some(gpu) = gpu_env::open() else { return };
    let mut cpu = common::engine(256);
    let mut on_gpu = common::engine(256);
    let gf =
        pollster::block_on(wisp::gpu::forward::GpuForward::new(Arc::new(gpu), &on_gpu.model, 256)).unwrap();
    on_gpu.use_gpu(gf).unwrap();
    let json = g(&llamacpp_grammar("json.gbnf"));
    let prompt = cpu
        .chat_prompt(&[wisp::chat::Message::new(
            "user",
            "Describe a dog as a JSON object with its name and age.",
        )])
        .unwrap();
    for (what, sampling) in [
        ("greedy", wisp::sampling::SamplingParams::greedy()),
        (
            "sampled",
            wisp::sampling::SamplingParams { temperature: 0.8, top_k: 40, seed: 9, ..Default::default() },
        ),
    ] {
        let opts = wisp::GenerateOptions {
            max_tokens: 40,
            sampling,
            grammar: Some(json.clone()),
            ..Default::default()
        };
        let a = cpu.generate(&prompt, &opts, &mut |_, _| true).unwrap();
        let read0 = on_gpu.gpu().unwrap().words_read();
        let b = on_gpu.generate(&prompt, &opts, &mut |_, _| true).unwrap();
        let read = on_gpu.gpu().unwrap().words_read() - read0;
        assert_eq!(a.ids, b.ids, "{what}: CPU {:?} GPU {:?}", a.text, b.text);
        let mut m = Matcher::new(json.clone());
        m.accept(b.text.as_bytes()).unwrap();
        println!("{what}: {} tokens, {read} words read back: {:?}", b.ids.len(), b.text);
        if what == "greedy" {
            // the prompt's logits (the first pick), then one token id per step
            let n_vocab = on_gpu.model.n_vocab as u64;
            assert_eq!(
                read,
                n_vocab + b.ids.len() as u64 - 1 + u64::from(b.finish == wisp::FinishReason::Eog)
            );
        }
    }
}

const CAT_SCHEMA: &str = r#"{"type": "object", "properties": {
  "name": {"type": "string", "maxLength": 20},
  "age": {"type": "integer"},
  "colour": {"enum": ["red", "green", "blue"]},
  "toys": {"type": "array", "items": {"type": "string", "maxLength": 15}, "minItems": 1, "maxItems": 3},
  "indoor": {"type": "boolean"}},
  "required": ["name", "age", "colour", "toys"]}"#;

/// What the schema above allows, checked by hand on the parsed output.
fn valid_cat(v: &serde_json::Value) -> Result<(), String> {
    let o = v.as_object().ok_or("not an object")?;
    for k in o.keys() {
        if !["name", "age", "colour", "toys", "indoor"].contains(&k.as_str()) {
            return Err(format!("unexpected key {k}"));
        }
    }
    let name = o.get("name").and_then(|n| n.as_str()).ok_or("name")?;
    if name.chars().count() > 20 {
        return Err("name too long".into());
    }
    o.get("age").and_then(|a| a.as_i64()).ok_or("age")?;
    let c = o.get("colour").and_then(|c| c.as_str()).ok_or("colour")?;
    if !["red", "green", "blue"].contains(&c) {
        return Err(format!("colour {c}"));
    }
    let toys = o.get("toys").and_then(|t| t.as_array()).ok_or("toys")?;
    if toys.is_empty()
        || toys.len() > 3
        || toys.iter().any(|t| t.as_str().is_none_or(|s| s.chars().count() > 15))
    {
        return Err("toys".into());
    }
    if let Some(i) = o.get("indoor") {
        i.as_bool().ok_or("indoor")?;
    }
    Ok(())
}

/// A JSON Schema, converted as llama.cpp converts it: every output of sampled runs over many
/// seeds parses and validates, and each ends because the grammar is complete.
#[test]
fn sampled_outputs_under_a_json_schema_all_validate() {
    let gr = Arc::new(Grammar::from_json_schema(CAT_SCHEMA).unwrap());
    let mut e = common::engine(512);
    e.set_numerics(wisp::cpu::Numerics::LlamaCpp);
    let prompt = e.chat_prompt(&[wisp::chat::Message::new("user", "Describe a cat in JSON.")]).unwrap();
    for seed in 0..24 {
        let opts = wisp::GenerateOptions {
            max_tokens: 200,
            sampling: wisp::sampling::SamplingParams {
                temperature: 1.0,
                top_k: 0,
                top_p: 1.0,
                min_p: 0.0,
                seed,
                ..Default::default()
            },
            grammar: Some(gr.clone()),
            ..Default::default()
        };
        let g = e.generate(&prompt, &opts, &mut |_, _| true).unwrap();
        assert_ne!(g.finish, wisp::FinishReason::Length, "seed {seed}: {:?}", g.text);
        let v: serde_json::Value =
            serde_json::from_str(&g.text).unwrap_or_else(|err| panic!("seed {seed}: {err}: {:?}", g.text));
        valid_cat(&v).unwrap_or_else(|why| panic!("seed {seed}: {why}: {}", g.text));
    }
}

/// `--grammar` and `--json-schema` in the CLI: output as asked, errors naming the file, the line
/// or the schema keyword and where it is.
#[test]
fn cli_grammar_and_json_schema() {
    let dir = std::env::temp_dir().join(format!("wisp-grammar-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wisp"))
            .args(args)
            .args([
                "--model",
                common::default_model().to_str().unwrap(),
                "--max-tokens",
                "60",
                "--temperature",
                "0",
            ])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let schema = dir.join("cat.json");
    std::fs::write(&schema, CAT_SCHEMA).unwrap();
    let prompt = "<|im_start|>user\nDescribe a cat in JSON.<|im_end|>\n<|im_start|>assistant\n";
    let (ok, out, err) =
        run(&["generate", "--prompt", prompt, "--json-schema", schema.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    let cat: serde_json::Value = serde_json::from_str(j["text"].as_str().unwrap()).unwrap();
    valid_cat(&cat).unwrap();
    // properties in the schema's order
    let text = j["text"].as_str().unwrap();
    assert!(
        text.find("\"name\"") < text.find("\"age\"") && text.find("\"age\"") < text.find("\"colour\""),
        "{text}"
    );

    let bad = dir.join("bad.gbnf");
    std::fs::write(&bad, "root ::= \"a\"\nitem ::= [a-z\n").unwrap();
    let (ok, _, err) = run(&["generate", "--prompt", "x", "--grammar", bad.to_str().unwrap()]);
    assert!(
        !ok && err.contains("bad.gbnf")
            && err.contains("line 2")
            && err.contains("unterminated character class"),
        "{err}"
    );
    let unsupported = dir.join("pattern.json");
    std::fs::write(
        &unsupported,
        r#"{"type": "object", "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}}}"#,
    )
    .unwrap();
    let (ok, _, err) = run(&["generate", "--prompt", "x", "--json-schema", unsupported.to_str().unwrap()]);
    assert!(!ok && err.contains("pattern") && err.contains("/properties/zip/pattern"), "{err}");
    let (ok, _, err) = run(&[
        "generate",
        "--prompt",
        "x",
        "--json-schema",
        unsupported.to_str().unwrap(),
        "--grammar",
        bad.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("not both"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Only valid UTF-8 matches: overlong forms, surrogates and codepoints past U+10FFFF are refused
/// even where the grammar takes any character, and a token that begins one is not allowed (a
/// lead byte 0xE0 could not become 's').
#[test]
fn only_valid_utf8_matches() {
    let any = g("root ::= [^\"]*");
    let take = |bytes: &[u8]| Matcher::new(any.clone()).accept(bytes).is_ok();
    assert!(take("€日本 ok".as_bytes()) && take(&[0xF0, 0x9F, 0x98, 0x80]));
    for bad in [
        &[0xC0, 0xB3][..],
        &[0xE0, 0x80, 0x80],
        &[0xED, 0xA0, 0x80],
        &[0xF4, 0x90, 0x80, 0x80],
        &[0xF8],
        &[0x80],
    ] {
        assert!(!take(bad), "{bad:02x?}");
    }
    let s = g("root ::= \"toys\"");
    let mut m = Matcher::new(s.clone());
    m.accept(b"toy").unwrap();
    assert!(m.accept(&[0xE0]).is_err(), "a lead byte whose characters are all ≥ U+0800");
}

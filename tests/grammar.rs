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
        let text = match case.get("gbnf") {
            Some(t) => t.as_str().unwrap().to_string(),
            None => llamacpp_grammar(case["file"].as_str().unwrap()),
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

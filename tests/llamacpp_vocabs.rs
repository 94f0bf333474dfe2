//! llama.cpp's own tokenizer test suite (`tests/test-tokenizer-0`): its vocab-only GGUFs with
//! `.inp` texts and `.out` expected ids, from the llama-cpp-python 0.3.36 sdist that
//! `scripts/setup.sh --test` caches in `$cache/llamacpp-vocabs/`. Every vocabulary that has
//! cases (except the encoder-only bert-bge, a WordPiece model of no chat model) is loaded through
//! `Tokenizer::from_gguf`; each case must give llama.cpp's ids exactly (as the suite runs it:
//! no BOS/EOS), and decoding them must give the text back. The vocabularies still refused are
//! listed here (none today), so a change in what is supported fails the test until this list is
//! updated, and each must be refused with an error naming why.

use std::path::PathBuf;
use wisp::tokenizer::Tokenizer;
use wisp::weights::GgufSource;

/// Refused on purpose, with the words their error must contain (e.g. `("gemma-4",
/// "unsupported tokenizer model 'gemma4'")` when that model was not yet supported).
const REFUSED: &[(&str, &str)] = &[];

/// Not part of this suite: an encoder-only WordPiece vocabulary.
const SKIPPED: &[&str] = &["bert-bge"];

/// llama.cpp's separator between the texts of an `.inp` file.
const SEPARATOR: &str = "\n__ggml_vocab_test__\n";

fn vocab_dir() -> PathBuf {
    let dir = wisp::fetch::cache_dir().join("llamacpp-vocabs");
    assert!(
        dir.join(".complete").exists(),
        "{} is missing: run `scripts/setup.sh --test` (it caches llama.cpp's tokenizer test vocabularies)",
        dir.display()
    );
    dir
}

/// The cases of `<name>.gguf.inp` / `.out`, as test-tokenizer-0 reads them.
fn cases(dir: &std::path::Path, name: &str) -> Vec<(String, Vec<u32>)> {
    let read = |ext: &str| {
        let p = dir.join(format!("ggml-vocab-{name}.gguf.{ext}"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let (inp, out) = (read("inp"), read("out"));
    let mut texts: Vec<&str> = inp.split(SEPARATOR).collect();
    if inp.ends_with(SEPARATOR) {
        texts.pop(); // the file ends with a separator: no text after it, as test-tokenizer-0 reads it
    }
    let ids: Vec<Vec<u32>> = out
        .lines()
        .map(|l| l.split_whitespace().map(|t| t.parse().expect("an id in .out")).collect())
        .collect();
    assert_eq!(texts.len(), ids.len(), "{name}: as many texts as id lines");
    texts.into_iter().map(str::to_string).zip(ids).collect()
}

#[test]
fn llamacpp_tokenizer_suite_passes_exactly() {
    let dir = vocab_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let f = e.ok()?.file_name().into_string().ok()?;
            Some(f.strip_prefix("ggml-vocab-")?.strip_suffix(".gguf.inp")?.to_string())
        })
        .filter(|n| !SKIPPED.contains(&n.as_str()))
        .collect();
    names.sort();
    assert!(names.len() >= 14, "the suite's vocabularies are all there: {names:?}");
    let (mut passed, mut refused) = (Vec::new(), Vec::new());
    let mut failures = Vec::new();
    for name in &names {
        let src = GgufSource::open(&dir.join(format!("ggml-vocab-{name}.gguf"))).expect("the GGUF parses");
        let tok = match Tokenizer::from_gguf(&src.header) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{name}: refused: {e}");
                match REFUSED.iter().find(|(n, _)| n == name) {
                    Some((_, words)) => {
                        assert!(e.to_string().contains(words), "{name}: the error names why: {e}")
                    }
                    None => failures.push(format!("{name}: refused but expected to pass: {e}")),
                }
                refused.push(name.clone());
                continue;
            }
        };
        if REFUSED.iter().any(|(n, _)| n == name) {
            failures.push(format!("{name}: loads, but REFUSED lists it: update the list"));
        }
        let cases = cases(&dir, name);
        let mut bad = 0;
        for (text, want) in &cases {
            let got = tok.encode(text, false).unwrap();
            if &got != want {
                bad += 1;
                failures.push(format!("{name}: {text:?}\n  want {want:?}\n  got  {got:?}"));
                continue;
            }
            let back = tok.decode(&got, false);
            if &back != text {
                bad += 1;
                failures.push(format!("{name}: {text:?} decodes to {back:?}"));
            }
        }
        eprintln!("{name}: {} of {} cases exact", cases.len() - bad, cases.len());
        if bad == 0 {
            passed.push(format!("{name} ({})", cases.len()));
        }
    }
    eprintln!("covered exactly: {}", passed.join(", "));
    eprintln!("refused: {}", refused.join(", "));
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    let expected: Vec<&str> = REFUSED.iter().map(|(n, _)| *n).collect();
    assert_eq!(refused, expected, "the vocabularies refused");
}

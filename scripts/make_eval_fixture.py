#!/usr/bin/env python3
"""Writes tests/fixtures/eval/metrics.json: what sacreBLEU and Google's rouge-score (PyPI) give
for ~45 varied hypothesis/reference pairs, for tests/eval.rs (src/eval.rs must give the same).

- BLEU with sacreBLEU's defaults: `sacrebleu.corpus_bleu` (tokenizer 13a, 4-grams, smoothing
  'exp', no effective order, brevity penalty) on several corpora of these pairs, and
  `sacrebleu.sentence_bleu` per pair (its own defaults: the same, with effective order on);
  each with its counts, totals, precisions, brevity penalty and lengths, and the 13a tokens.
- ROUGE-1/2/L (precision, recall, F1) as `rouge_scorer.RougeScorer(['rouge1', 'rouge2',
  'rougeL'])` computes them with its default `use_stemmer=False`; `score(target=reference,
  prediction=hypothesis)`; with its tokens; and their means over each corpus (summed in order).

Floats are written as Python repr() strings: the test parses them with Rust's correctly rounded
`str::parse::<f64>`, where serde_json's default float parsing can be an ulp off, so the values
that need no libm call (ROUGE, BLEU precisions) can be compared bit for bit.

Run: pip install sacrebleu==2.6.0 rouge-score==0.1.2; python3 scripts/make_eval_fixture.py
"""
import json
import platform
from pathlib import Path

import sacrebleu
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests/fixtures/eval/metrics.json"

# (hypothesis, reference): punctuation, contractions, numbers, accents and other scripts, empty
# and whitespace-only strings, repeated words, HTML entities, Unicode spaces, long and short.
PAIRS = [
    ("The cat sat on the mat.", "The cat sat on the mat."),
    ("The cat is sitting on the mat.", "The cat sat on the mat."),
    ("Hello, world!", "Hello world."),
    ("I don't know.", "I do not know."),
    ("It costs 3.50 dollars, not 1,000.", "The price is 3.50 dollars."),
    ("Pages 10-20 were read.", "They read pages 10-20 yesterday."),
    ("Émile Zola écrivit « Germinal » en 1885.", "Zola a écrit Germinal en 1885."),
    ("İstanbul is 300 K warm today", "Istanbul is warm today"),
    ("", "The capital of France is Paris."),
    ("", ""),
    ("Something was said.", ""),
    ("   \t  ", "Nothing was said."),
    ("the the the the the the the", "the cat is on the mat"),
    (
        "The committee met on Tuesday to discuss the budget for next year, and after a long "
        "debate it agreed to raise spending on schools by four percent while cutting the "
        "roads budget; the mayor said the decision was difficult but necessary.",
        "On Tuesday the committee debated next year's budget at length. It agreed to increase "
        "school spending by 4 percent and to cut spending on roads, a decision the mayor "
        "called difficult but necessary.",
    ),
    ("Paris", "Paris"),
    ("Paris.", "Paris is the capital of France."),
    ("THE CAPITAL OF FRANCE IS PARIS", "The capital of France is Paris."),
    ("Tom &amp; Jerry &lt;3 &quot;cheese&quot; &gt; all", 'Tom & Jerry <3 "cheese" > all'),
    ("The <skipped> answer is here", "The answer is here"),
    ("state-of-the-\nart models are large", "state-of-the-art models are large"),
    ("tabs\tand  many   spaces\u00a0and\u2009thin\x1cseparators", "tabs and many spaces and thin separators"),
    ("I love 🦀 and ☕!", "I love crabs and coffee!"),
    ("東京は日本の首都です。", "東京は首都です。"),
    ('fn main() { println!("hi"); }', 'fn main() { println!("hello"); }'),
    ("She said 'yes'.", 'She said "yes".'),
    ("Version 2.0.1 was released.", "Released: version 2.0.1"),
    ("1,000,000 people came, i.e. a lot.", "One million people came."),
    ("e.g. the U.S.A. and the U.K.", "for example the USA and the UK"),
    ("Answer: 42\n\n", "42"),
    ("a b a b a b", "a b a b"),
    (
        "Photosynthesis is the process by which green plants, algae and some bacteria use the "
        "energy of sunlight to turn water and carbon dioxide into glucose and oxygen, which "
        "they release into the air.",
        "Plants turn light into chemical energy.",
    ),
    ("Plants use light.", "Plants use the energy of sunlight to turn water and carbon dioxide into sugar."),
    ("ÉCOLE école Ecole ECOLE", "ecole"),
    ("x² + y² = z²", "x2 + y2 = z2"),
    ("a well–known result — really", "a well-known result - really"),
    ("It’s fine, isn’t it?", "It's fine, isn't it?"),
    (
        "The report says sales fell in the first quarter because of the storm.",
        "Sales fell in the first quarter, the report says, because of the storm.",
    ),
    ("Please send me the file by Friday.", "Could you send me the file by Friday, please?"),
    ("!!!", "?"),
    ("The answer is 42.", "42"),
    ("Wait... what?", "Wait, what?"),
    ("3-4 apples and -5 degrees at 10-11.", "three or four apples at minus 5 degrees"),
    ("first line\nsecond line\r\nthird", "first line second line third"),
    ("next\u0085line\u2028separator\u3000ideographic", "next line separator ideographic"),
    ("The water boils at 100 °C (212 °F).", "Water boils at 100 degrees Celsius."),
    ("Cats, dogs, and birds; all are pets.", "Cats, dogs and birds are all pets."),
    (".5 is half.. or is it,, 1,5-2,5 -- x.y,z", "0.5 is half, or is it 1.5 to 2.5"),
    ("&amp;amp; &AMP; &lt;tag&gt; a-\nb", "&amp; & <tag> ab"),
    ("It was 5 \u212a (Kelvin sign) and 5 K.", "It was 5 K and 5 K."),
    ("𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters 𝟙𝟚𝟛 and 123", "Unicode math letters 123 and 123"),
]

# corpora, as indices into PAIRS: all of them; a few ordinary ones; one where nothing matches (the
# early exit); one of short hypotheses (no 4-grams at all, the loop's break); empty hypotheses
CORPORA = {
    "all": list(range(len(PAIRS))),
    "first_five": [0, 1, 2, 3, 4],
    "no_match": [11, 38],
    "short": [14, 15, 28, 39],
    "empty_hypotheses": [8, 9],
    "long": [13, 30, 31, 36],
}


def r(x):
    """A float as its shortest round-trip text."""
    return repr(float(x))


def bleu_json(b):
    return {
        "score": r(b.score),
        "counts": [int(c) for c in b.counts],
        "totals": [int(t) for t in b.totals],
        "precisions": [r(p) for p in b.precisions],
        "bp": r(b.bp),
        "sys_len": int(b.sys_len),
        "ref_len": int(b.ref_len),
    }


def main():
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])  # use_stemmer=False (default)
    tok_13a = BLEU()._preprocess_segment  # rstrip, then the 13a tokenizer (what BLEU counts on)
    rouge_tok = scorer._tokenizer.tokenize
    pairs = []
    for hyp, ref in PAIRS:
        scores = scorer.score(ref, hyp)  # score(target, prediction)
        pairs.append({
            "hypothesis": hyp,
            "reference": ref,
            "tokens_13a": {"hypothesis": tok_13a(hyp).split(), "reference": tok_13a(ref).split()},
            "tokens_rouge": {"hypothesis": rouge_tok(hyp), "reference": rouge_tok(ref)},
            "sentence_bleu": bleu_json(sacrebleu.sentence_bleu(hyp, [ref])),
            **{
                k: {"precision": r(s.precision), "recall": r(s.recall), "fmeasure": r(s.fmeasure)}
                for k, s in scores.items()
            },
        })
    corpora = []
    for name, idx in CORPORA.items():
        hyps = [PAIRS[i][0] for i in idx]
        refs = [PAIRS[i][1] for i in idx]
        means = {}
        for k in ["rouge1", "rouge2", "rougeL"]:
            acc = 0.0
            for i in idx:  # summed in order, as src/eval.rs does
                acc += float(pairs[i][k]["fmeasure"])
            means[k] = r(acc / len(idx))
        corpora.append({
            "name": name,
            "indices": idx,
            "bleu": bleu_json(sacrebleu.corpus_bleu(hyps, [refs])),
            "rouge_mean_f": means,
        })
    out = {
        "generator": "scripts/make_eval_fixture.py",
        "versions": {
            "python": platform.python_version(),
            "sacrebleu": sacrebleu.__version__,
            "rouge_score": "0.1.2",
        },
        "settings": {
            "bleu": "sacrebleu.corpus_bleu / sentence_bleu defaults: tok 13a, 4-grams, smooth exp, "
            "case mixed; corpus eff:no, sentence eff:yes",
            "rouge": "rouge_scorer.RougeScorer(['rouge1','rouge2','rougeL'], use_stemmer=False)",
            "floats": "repr() strings, parsed exactly by the test",
        },
        "pairs": pairs,
        "corpora": corpora,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{OUT.relative_to(ROOT)}: {len(pairs)} pairs, {len(corpora)} corpora")


if __name__ == "__main__":
    main()

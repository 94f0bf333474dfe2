//! Constrained decoding: GBNF grammars (llama.cpp's format, so users' grammars work unchanged)
//! restrict which tokens may come next.
//!
//! [`Grammar::parse`] reads the rules into one flat element array (llama.cpp's layout: each rule
//! its alternatives separated by `Alt` and ended by `End`; repetitions rewritten into helper
//! rules). [`Matcher`] runs the grammar as llama.cpp does, as a set of pushdown stacks advanced
//! codepoint by codepoint, with two changes for speed: stacks are hash-consed (a stack is a node
//! id, equal stacks are the same id, so a set of stacks is a small sorted id list and every step
//! on it can be memoised), and the tokens allowed next are found by walking a trie of the
//! vocabulary once per step, so a prefix the grammar rejects rules out every token that starts
//! with it at once. The allowed set of a stack set is cached: inside a long string or a
//! repeated structure the same set recurs and costs a copy.
//!
//! Tokens are matched on their bytes as UTF-8 text; a token ending inside a multi-byte character
//! is allowed if some codepoint it could begin is allowed, and the bytes carry into the next
//! token (as llama.cpp's partial-UTF-8 state). Tokens with no text (control tokens) are never
//! allowed; end-of-generation is allowed exactly when the grammar is complete.

pub mod json_schema;

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::Arc;

/// Grammar text larger than this is refused (a hostile input bound).
pub const MAX_GRAMMAR_BYTES: usize = 1 << 20;
/// Repetition counts (`{m,n}`) above this are refused: each is expanded into rules.
pub const MAX_REPEAT: u32 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    /// End of a rule.
    End,
    /// Between two alternatives of a rule.
    Alt,
    /// A reference to a rule.
    Ref(u32),
    /// One codepoint from a character set (index into `Grammar::sets`).
    Chars(u32),
}

/// A character class: codepoint ranges (inclusive), or their complement.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CharSet {
    negated: bool,
    ranges: Vec<(u32, u32)>,
}

impl CharSet {
    fn matches(&self, c: u32) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }

    /// Whether some codepoint in `lo..=hi` is in the set.
    fn intersects(&self, lo: u32, hi: u32) -> bool {
        if self.negated {
            // a codepoint of lo..=hi outside every range
            let mut c = lo;
            let mut rs = self.ranges.clone();
            rs.sort_unstable();
            for (a, b) in rs {
                if b < c {
                    continue;
                }
                if a > c {
                    return true;
                }
                c = b.saturating_add(1);
                if c > hi {
                    return false;
                }
            }
            c <= hi
        } else {
            self.ranges.iter().any(|&(a, b)| a <= hi && lo <= b)
        }
    }
}

/// A parsed GBNF grammar.
#[derive(Debug)]
pub struct Grammar {
    /// Every rule's elements back to back.
    flat: Vec<Elem>,
    /// Where each rule starts in `flat`.
    starts: Vec<u32>,
    names: Vec<String>,
    sets: Vec<CharSet>,
    root: u32,
}

/// The rules as parsed, before flattening.
struct Builder {
    names: Vec<String>,
    by_name: HashMap<String, u32>,
    rules: Vec<Option<Vec<Elem>>>,
    /// Where each rule was first referenced (for the undefined-rule error).
    first_use: Vec<usize>,
    sets: Vec<CharSet>,
    set_ids: HashMap<CharSet, u32>,
}

impl Builder {
    fn symbol(&mut self, name: &str, at: usize) -> u32 {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.by_name.insert(name.to_string(), id);
        self.rules.push(None);
        self.first_use.push(at);
        id
    }

    /// A new rule named after `base` (for groups and repetitions).
    fn fresh(&mut self, base: &str, at: usize) -> u32 {
        let mut n = self.names.len();
        loop {
            let name = format!("{base}_{n}");
            if !self.by_name.contains_key(&name) {
                return self.symbol(&name, at);
            }
            n += 1;
        }
    }

    fn set(&mut self, s: CharSet) -> Elem {
        let next = self.sets.len() as u32;
        let id = *self.set_ids.entry(s.clone()).or_insert(next);
        if id == next {
            self.sets.push(s);
        }
        Elem::Chars(id)
    }
}

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    b: Builder,
}

/// An error at byte `at` of `src`, naming its line and column and what follows.
fn error_at(src: &[u8], at: usize, why: impl std::fmt::Display) -> Error {
    let at = at.min(src.len());
    let before = &src[..at];
    let line = before.iter().filter(|&&c| c == b'\n').count() + 1;
    let col =
        String::from_utf8_lossy(&before[before.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1)..])
            .chars()
            .count()
            + 1;
    let near: String =
        String::from_utf8_lossy(&src[at..]).chars().take(20).take_while(|&c| c != '\n').collect();
    if near.is_empty() {
        Error::Grammar(format!("line {line}, column {col}: {why}"))
    } else {
        Error::Grammar(format!("line {line}, column {col}: {why} (at '{near}')"))
    }
}

impl<'a> Parser<'a> {
    fn err(&self, at: usize, why: impl std::fmt::Display) -> Error {
        error_at(self.src, at, why)
    }

    fn peek(&self) -> u8 {
        self.src.get(self.pos).copied().unwrap_or(0)
    }

    fn space(&mut self, newline_ok: bool) {
        while self.pos < self.src.len() {
            match self.src[self.pos] {
                b' ' | b'\t' => self.pos += 1,
                b'#' => {
                    while self.pos < self.src.len()
                        && self.src[self.pos] != b'\n'
                        && self.src[self.pos] != b'\r'
                    {
                        self.pos += 1;
                    }
                }
                b'\n' | b'\r' if newline_ok => self.pos += 1,
                _ => break,
            }
        }
    }

    fn is_word(c: u8) -> bool {
        c.is_ascii_alphanumeric() || c == b'-'
    }

    fn name(&mut self) -> Result<String> {
        let start = self.pos;
        while Self::is_word(self.peek()) {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err(start, "expecting a rule name"));
        }
        Ok(String::from_utf8_lossy(&self.src[start..self.pos]).into_owned())
    }

    /// One codepoint of a literal or class, escapes decoded.
    fn char(&mut self) -> Result<u32> {
        let at = self.pos;
        let c = self.peek();
        if c == 0 && self.pos >= self.src.len() {
            return Err(self.err(at, "unexpected end of input"));
        }
        if c == b'\\' {
            self.pos += 1;
            let e = self.peek();
            self.pos += 1;
            let hex = |p: &mut Self, n: usize| -> Result<u32> {
                let s = p.src.get(p.pos..p.pos + n).ok_or_else(|| p.err(at, "a short escape"))?;
                let v = std::str::from_utf8(s)
                    .ok()
                    .and_then(|s| u32::from_str_radix(s, 16).ok())
                    .ok_or_else(|| p.err(at, "expecting hex digits in the escape"))?;
                p.pos += n;
                Ok(v)
            };
            let v = match e {
                b'x' => hex(self, 2)?,
                b'u' => hex(self, 4)?,
                b'U' => hex(self, 8)?,
                b't' => 9,
                b'r' => 13,
                b'n' => 10,
                b'\\' | b'"' | b'[' | b']' => e as u32,
                _ => return Err(self.err(at, format!("unknown escape '\\{}'", e as char))),
            };
            if char::from_u32(v).is_none() {
                return Err(
                    self.err(at, format!("escape \\{}{v:X} is not a Unicode scalar value", e as char))
                );
            }
            return Ok(v);
        }
        // one UTF-8 character
        let rest = &self.src[self.pos..];
        let len = match c {
            0x00..=0x7F => 1,
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 0,
        };
        let s = rest
            .get(..len)
            .and_then(|s| std::str::from_utf8(s).ok())
            .ok_or_else(|| self.err(at, "invalid UTF-8"))?;
        self.pos += len;
        Ok(s.chars().next().map_or(0, |c| c as u32))
    }

    fn alternates(&mut self, rule: &str, nested: bool, depth: usize) -> Result<Vec<Elem>> {
        if depth > 200 {
            return Err(self.err(self.pos, "groups nested over 200 deep"));
        }
        let mut out = Vec::new();
        self.sequence(rule, nested, &mut out, depth)?;
        while self.peek() == b'|' {
            out.push(Elem::Alt);
            self.pos += 1;
            self.space(true);
            self.sequence(rule, nested, &mut out, depth)?;
        }
        out.push(Elem::End);
        Ok(out)
    }

    fn sequence(&mut self, rule: &str, nested: bool, out: &mut Vec<Elem>, depth: usize) -> Result<()> {
        let mut last_start: Option<usize> = None;
        loop {
            let at = self.pos;
            match self.peek() {
                b'"' => {
                    self.pos += 1;
                    last_start = Some(out.len());
                    while self.peek() != b'"' {
                        if self.pos >= self.src.len() {
                            return Err(self.err(at, "unterminated literal"));
                        }
                        let c = self.char()?;
                        let e = self.b.set(CharSet { negated: false, ranges: vec![(c, c)] });
                        out.push(e);
                    }
                    self.pos += 1;
                    self.space(nested);
                }
                b'[' => {
                    self.pos += 1;
                    let negated = self.peek() == b'^';
                    if negated {
                        self.pos += 1;
                    }
                    let mut ranges = Vec::new();
                    while self.peek() != b']' {
                        if self.pos >= self.src.len() {
                            return Err(self.err(at, "unterminated character class"));
                        }
                        let lo = self.char()?;
                        let mut hi = lo;
                        if self.peek() == b'-' && self.src.get(self.pos + 1).is_some_and(|&c| c != b']') {
                            self.pos += 1;
                            hi = self.char()?;
                            if hi < lo {
                                return Err(self.err(at, "a character range whose end is before its start"));
                            }
                        }
                        ranges.push((lo, hi));
                    }
                    self.pos += 1;
                    last_start = Some(out.len());
                    let e = self.b.set(CharSet { negated, ranges });
                    out.push(e);
                    self.space(nested);
                }
                b'.' => {
                    self.pos += 1;
                    last_start = Some(out.len());
                    let e = self.b.set(CharSet { negated: true, ranges: vec![] });
                    out.push(e);
                    self.space(nested);
                }
                b'(' => {
                    self.pos += 1;
                    self.space(true);
                    let sub = self.b.fresh(rule, at);
                    let body = self.alternates(rule, true, depth + 1)?;
                    self.b.rules[sub as usize] = Some(body);
                    if self.peek() != b')' {
                        return Err(self.err(self.pos, "expecting ')'"));
                    }
                    self.pos += 1;
                    last_start = Some(out.len());
                    out.push(Elem::Ref(sub));
                    self.space(nested);
                }
                c if Self::is_word(c) => {
                    let name = self.name()?;
                    last_start = Some(out.len());
                    let id = self.b.symbol(&name, at);
                    out.push(Elem::Ref(id));
                    self.space(nested);
                }
                b'*' | b'+' | b'?' | b'{' => {
                    let Some(start) = last_start else {
                        return Err(
                            self.err(at, format!("expecting an item before '{}'", self.peek() as char))
                        );
                    };
                    let (min, max) = self.repetition()?;
                    let item: Vec<Elem> = out.drain(start..).collect();
                    self.repeat(rule, item, min, max, out, at);
                    last_start = None;
                    self.space(nested);
                }
                b'<' => return Err(self.err(at, "token references (<…>) are not supported")),
                _ => return Ok(()),
            }
        }
    }

    /// `*`, `+`, `?` or `{m}`, `{m,}`, `{m,n}`: (min, max; None = unbounded).
    fn repetition(&mut self) -> Result<(u32, Option<u32>)> {
        let at = self.pos;
        let c = self.peek();
        self.pos += 1;
        Ok(match c {
            b'*' => (0, None),
            b'+' => (1, None),
            b'?' => (0, Some(1)),
            _ => {
                self.space(true);
                let num = |p: &mut Self| -> Result<Option<u32>> {
                    let s = p.pos;
                    while p.peek().is_ascii_digit() {
                        p.pos += 1;
                    }
                    if s == p.pos {
                        return Ok(None);
                    }
                    let v: u64 = std::str::from_utf8(&p.src[s..p.pos])
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(u64::MAX);
                    if v > MAX_REPEAT as u64 {
                        return Err(p.err(s, format!("a repetition count over {MAX_REPEAT}")));
                    }
                    Ok(Some(v as u32))
                };
                let min = num(self)?.ok_or_else(|| self.err(at, "expecting a number after '{'"))?;
                self.space(true);
                let max = if self.peek() == b',' {
                    self.pos += 1;
                    self.space(true);
                    num(self)?
                } else {
                    Some(min)
                };
                self.space(true);
                if self.peek() != b'}' {
                    return Err(self.err(self.pos, "expecting '}'"));
                }
                self.pos += 1;
                if max.is_some_and(|m| m < min) {
                    return Err(self.err(at, "a repetition whose maximum is under its minimum"));
                }
                (min, max)
            }
        })
    }

    /// Appends `item` repeated min..=max times (as llama.cpp rewrites repetitions: the item
    /// `min` times, then an optional tail as helper rules).
    fn repeat(
        &mut self,
        rule: &str,
        item: Vec<Elem>,
        min: u32,
        max: Option<u32>,
        out: &mut Vec<Elem>,
        at: usize,
    ) {
        // the item as one element (a helper rule unless it is one already)
        let unit = if item.len() == 1 {
            item[0]
        } else {
            let r = self.b.fresh(rule, at);
            let mut body = item;
            body.push(Elem::End);
            self.b.rules[r as usize] = Some(body);
            Elem::Ref(r)
        };
        for _ in 0..min {
            out.push(unit);
        }
        match max {
            None => {
                // tail ::= unit tail |
                let tail = self.b.fresh(rule, at);
                self.b.rules[tail as usize] = Some(vec![unit, Elem::Ref(tail), Elem::Alt, Elem::End]);
                out.push(Elem::Ref(tail));
            }
            Some(max) if max > min => {
                // opt_k ::= unit opt_{k-1} | ; opt_1 ::= unit |
                let mut next: Option<u32> = None;
                for _ in 0..max - min {
                    let r = self.b.fresh(rule, at);
                    let mut body = vec![unit];
                    body.extend(next.map(Elem::Ref));
                    body.extend([Elem::Alt, Elem::End]);
                    self.b.rules[r as usize] = Some(body);
                    next = Some(r);
                }
                out.extend(next.map(Elem::Ref));
            }
            Some(_) => {}
        }
    }
}

impl Grammar {
    /// Parses GBNF text; errors name the line and column. The start rule is `root`.
    pub fn parse(text: &str) -> Result<Grammar> {
        if text.len() > MAX_GRAMMAR_BYTES {
            return Err(Error::limit("grammar bytes", text.len() as u64, MAX_GRAMMAR_BYTES as u64));
        }
        let b = Builder {
            names: Vec::new(),
            by_name: HashMap::new(),
            rules: Vec::new(),
            first_use: Vec::new(),
            sets: Vec::new(),
            set_ids: HashMap::new(),
        };
        let mut p = Parser { src: text.as_bytes(), pos: 0, b };
        p.space(true);
        while p.pos < p.src.len() {
            let at = p.pos;
            let name = p.name()?;
            p.space(false);
            if !p.src[p.pos..].starts_with(b"::=") {
                return Err(p.err(p.pos, "expecting '::='"));
            }
            p.pos += 3;
            p.space(true);
            let id = p.b.symbol(&name, at);
            if p.b.rules[id as usize].is_some() {
                return Err(p.err(at, format!("rule '{name}' is defined twice")));
            }
            // a placeholder first: the rule may refer to itself
            p.b.rules[id as usize] = Some(Vec::new());
            let body = p.alternates(&name, false, 0)?;
            p.b.rules[id as usize] = Some(body);
            match p.peek() {
                b'\r' | b'\n' => p.pos += 1,
                0 if p.pos >= p.src.len() => {}
                _ => return Err(p.err(p.pos, "expecting a newline or the end")),
            }
            p.space(true);
        }
        let b = p.b;
        let mut flat = Vec::new();
        let mut starts = Vec::new();
        for (i, r) in b.rules.iter().enumerate() {
            let Some(r) = r else {
                return Err(error_at(
                    text.as_bytes(),
                    b.first_use[i],
                    format!("undefined rule '{}'", b.names[i]),
                ));
            };
            starts.push(flat.len() as u32);
            flat.extend_from_slice(r);
        }
        let root =
            *b.by_name.get("root").ok_or_else(|| Error::Grammar("the grammar has no 'root' rule".into()))?;
        let g = Grammar { flat, starts, names: b.names, sets: b.sets, root };
        g.check_left_recursion()?;
        Ok(g)
    }

    /// The grammar of the JSON texts a JSON Schema allows (the schema as text: its property order
    /// is the order the output takes), as llama.cpp converts it ([`json_schema`]); a keyword it
    /// cannot honour is refused naming it and where it is.
    pub fn from_json_schema(schema: &str) -> Result<Grammar> {
        let gbnf = json_schema::json_schema_str_to_gbnf(schema).map_err(|e| Error::Grammar(e.to_string()))?;
        Grammar::parse(&gbnf)
    }

    fn alternatives(&self, rule: u32) -> impl Iterator<Item = u32> + '_ {
        let start = self.starts[rule as usize];
        let mut at = Some(start);
        std::iter::from_fn(move || {
            let a = at?;
            let mut i = a as usize;
            while !matches!(self.flat[i], Elem::Alt | Elem::End) {
                i += 1;
            }
            at = (self.flat[i] == Elem::Alt).then_some(i as u32 + 1);
            Some(a)
        })
    }

    /// Left recursion would loop the matcher forever: refused, naming the rule (as llama.cpp).
    fn check_left_recursion(&self) -> Result<()> {
        let n = self.starts.len();
        // nullable rules (can match the empty string), to a fixed point
        let mut nullable = vec![false; n];
        loop {
            let mut changed = false;
            for r in 0..n {
                if nullable[r] {
                    continue;
                }
                let any = self.alternatives(r as u32).any(|a| {
                    let mut i = a as usize;
                    loop {
                        match self.flat[i] {
                            Elem::Alt | Elem::End => return true,
                            Elem::Ref(x) if nullable[x as usize] => i += 1,
                            _ => return false,
                        }
                    }
                });
                if any {
                    nullable[r] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // rules each can begin with (before consuming a character)
        let firsts: Vec<Vec<u32>> = (0..n as u32)
            .map(|r| {
                let mut out = Vec::new();
                for a in self.alternatives(r) {
                    let mut i = a as usize;
                    while let Elem::Ref(x) = self.flat[i] {
                        out.push(x);
                        if !nullable[x as usize] {
                            break;
                        }
                        i += 1;
                    }
                }
                out
            })
            .collect();
        // a cycle in that graph (iterative depth-first search)
        let mut state = vec![0u8; n]; // 0 new, 1 on the path, 2 done
        for s in 0..n {
            if state[s] != 0 {
                continue;
            }
            let mut path: Vec<(usize, usize)> = vec![(s, 0)];
            state[s] = 1;
            while let Some(&mut (r, ref mut k)) = path.last_mut() {
                if let Some(&x) = firsts[r].get(*k) {
                    *k += 1;
                    match state[x as usize] {
                        1 => {
                            return Err(Error::Grammar(format!(
                                "left recursion in rule '{}' (it can refer to itself before matching a character)",
                                self.names[x as usize]
                            )))
                        }
                        0 => {
                            state[x as usize] = 1;
                            path.push((x as usize, 0));
                        }
                        _ => {}
                    }
                } else {
                    state[r] = 2;
                    path.pop();
                }
            }
        }
        Ok(())
    }
}

/// The empty stack: the grammar is complete on it.
const NIL: u32 = u32::MAX;

/// A multiply-rotate hasher for the matcher's small integer keys (the trie walk is a hash lookup
/// per vocabulary byte; SipHash, the default, made it several times slower). Not for keys an
/// attacker picks to collide: these are ids the matcher itself numbers.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl std::hash::Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64);
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FxMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fx>>;

/// A UTF-8 character begun in one token's bytes and continued in the next: its bits so far, the
/// continuation bytes still to come, and its whole length (for the smallest codepoint that
/// length may encode: overlong forms are not UTF-8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct Partial {
    value: u32,
    left: u8,
    len: u8,
}

impl Partial {
    /// The codepoints a character begun so could still become, or None if none is valid UTF-8
    /// (overlong, past U+10FFFF).
    fn range(self) -> Option<(u32, u32)> {
        let shift = 6 * self.left as u32;
        let lo = (self.value << shift).max(min_codepoint(self.len));
        let hi = ((self.value << shift) | ((1 << shift) - 1)).min(0x10FFFF);
        (lo <= hi).then_some((lo, hi))
    }
}

/// The smallest codepoint a UTF-8 sequence of `len` bytes may encode.
fn min_codepoint(len: u8) -> u32 {
    match len {
        2 => 0x80,
        3 => 0x800,
        4 => 0x10000,
        _ => 0,
    }
}

/// The vocabulary as a byte trie, built once per tokenizer: each node's children by byte and
/// the tokens ending there.
pub struct TokenTrie {
    /// (first child index into `edges`, child count, first token index into `ends`, count)
    nodes: Vec<(u32, u32, u32, u32)>,
    /// (byte, node)
    edges: Vec<(u8, u32)>,
    ends: Vec<u32>,
    n_vocab: usize,
}

impl TokenTrie {
    /// Tokens with no bytes (control tokens) are left out: never allowed.
    pub fn new(tokens: impl Iterator<Item = (u32, Vec<u8>)>, n_vocab: usize) -> TokenTrie {
        let mut all: Vec<(Vec<u8>, u32)> =
            tokens.filter(|(_, b)| !b.is_empty()).map(|(i, b)| (b, i)).collect();
        all.sort();
        // build by recursion over the sorted list: a node is a range of `all` sharing a prefix
        struct B<'a> {
            all: &'a [(Vec<u8>, u32)],
            t: TokenTrie,
        }
        impl B<'_> {
            fn node(&mut self, lo: usize, hi: usize, depth: usize) -> u32 {
                let id = self.t.nodes.len() as u32;
                self.t.nodes.push((0, 0, 0, 0));
                let mut i = lo;
                let first_end = self.t.ends.len() as u32;
                while i < hi && self.all[i].0.len() == depth {
                    self.t.ends.push(self.all[i].1);
                    i += 1;
                }
                let n_ends = self.t.ends.len() as u32 - first_end;
                // children: runs of the same byte at `depth`
                let mut kids = Vec::new();
                while i < hi {
                    let b = self.all[i].0[depth];
                    let mut j = i;
                    while j < hi && self.all[j].0[depth] == b {
                        j += 1;
                    }
                    kids.push((b, i, j));
                    i = j;
                }
                let first_edge = self.t.edges.len() as u32;
                self.t.edges.extend(kids.iter().map(|&(b, _, _)| (b, 0)));
                for (k, &(_, a, z)) in kids.iter().enumerate() {
                    let child = self.node(a, z, depth + 1);
                    self.t.edges[first_edge as usize + k].1 = child;
                }
                self.t.nodes[id as usize] = (first_edge, kids.len() as u32, first_end, n_ends);
                id
            }
        }
        let mut b =
            B { all: &all, t: TokenTrie { nodes: Vec::new(), edges: Vec::new(), ends: Vec::new(), n_vocab } };
        b.node(0, all.len(), 0);
        b.t
    }

    /// From the tokenizer's token bytes (control tokens shown as nothing).
    pub fn from_tokenizer(t: &crate::tokenizer::Tokenizer, n_vocab: usize) -> TokenTrie {
        let n = t.vocab_size().min(n_vocab);
        TokenTrie::new((0..n as u32).map(|i| (i, t.token_bytes(i, false).to_vec())), n_vocab)
    }
}

/// A grammar being matched over a generation: the set of stacks after the tokens so far.
pub struct Matcher {
    g: Arc<Grammar>,
    /// Stack nodes (top element position, the rest of the stack), hash-consed.
    nodes: Vec<(u32, u32)>,
    node_ids: FxMap<(u32, u32), u32>,
    /// Stack sets (sorted node ids), interned.
    sets: Vec<Arc<[u32]>>,
    set_ids: FxMap<Arc<[u32]>, u32>,
    /// set → the set after each ASCII character (UNKNOWN until computed), memoised.
    ascii: Vec<Option<Box<[u32; 128]>>>,
    ascii_tables: usize,
    /// (set, non-ASCII codepoint) → set after it, memoised.
    steps: FxMap<(u32, u32), u32>,
    /// A node's expansion into stacks whose tops are characters (or NIL), memoised.
    expanded: FxMap<u32, Arc<[u32]>>,
    /// (set, partial character) → the allowed-token mask.
    masks: FxMap<(u32, Partial), Arc<Vec<u64>>>,
    state: u32,
    partial: Partial,
    /// The empty set's id (every character rejected).
    empty: u32,
}

/// A step not yet computed, in the ASCII tables.
const UNKNOWN: u32 = u32::MAX;

/// Memo entries kept before the caches are dropped (a bound for hostile grammars).
const MEMO_CAP: usize = 1 << 20;
const MASK_CAP: usize = 256;

impl Matcher {
    pub fn new(g: Arc<Grammar>) -> Matcher {
        let mut m = Matcher {
            g,
            nodes: Vec::new(),
            node_ids: FxMap::default(),
            sets: Vec::new(),
            set_ids: FxMap::default(),
            ascii: Vec::new(),
            ascii_tables: 0,
            steps: FxMap::default(),
            expanded: FxMap::default(),
            masks: FxMap::default(),
            state: 0,
            partial: Partial::default(),
            empty: 0,
        };
        m.empty = m.intern_set(Vec::new());
        // the root rule's alternatives, expanded
        let root = m.g.root;
        let mut out = Vec::new();
        let alts: Vec<u32> = m.g.alternatives(root).collect();
        for a in alts {
            let s = m.push(a, NIL);
            m.expand_into(s, &mut out);
        }
        m.state = m.intern_set(out);
        m
    }

    /// The stack with `pos` on top of `rest` (the rest itself if `pos` ends its alternative).
    fn push(&mut self, pos: u32, rest: u32) -> u32 {
        if matches!(self.g.flat[pos as usize], Elem::Alt | Elem::End) {
            return rest;
        }
        if let Some(&id) = self.node_ids.get(&(pos, rest)) {
            return id;
        }
        let id = self.nodes.len() as u32;
        self.nodes.push((pos, rest));
        self.node_ids.insert((pos, rest), id);
        id
    }

    fn intern_set(&mut self, mut v: Vec<u32>) -> u32 {
        v.sort_unstable();
        v.dedup();
        let v: Arc<[u32]> = v.into();
        if let Some(&id) = self.set_ids.get(&v) {
            return id;
        }
        let id = self.sets.len() as u32;
        self.sets.push(v.clone());
        self.set_ids.insert(v, id);
        id
    }

    /// The stacks `s` stands for once every rule reference on top is expanded.
    fn expand_into(&mut self, s: u32, out: &mut Vec<u32>) {
        if let Some(e) = self.expanded.get(&s) {
            out.extend_from_slice(e);
            return;
        }
        let mut got = Vec::new();
        let mut todo = vec![s];
        let mut seen = std::collections::HashSet::new();
        while let Some(s) = todo.pop() {
            if !seen.insert(s) {
                continue;
            }
            if s == NIL {
                got.push(NIL);
                continue;
            }
            let (pos, rest) = self.nodes[s as usize];
            match self.g.flat[pos as usize] {
                Elem::Ref(r) => {
                    let cont = self.push(pos + 1, rest);
                    let alts: Vec<u32> = self.g.alternatives(r).collect();
                    for a in alts {
                        let t = self.push(a, cont);
                        todo.push(t);
                    }
                }
                _ => got.push(s),
            }
        }
        got.sort_unstable();
        got.dedup();
        let got: Arc<[u32]> = got.into();
        out.extend_from_slice(&got);
        if self.expanded.len() < MEMO_CAP {
            self.expanded.insert(s, got);
        }
    }

    /// The set after codepoint `c` from set `set` (possibly the empty set: `c` rejected).
    fn step(&mut self, set: u32, c: u32) -> u32 {
        // ASCII steps from a table per set (the trie walk's inner loop: an index, not a hash)
        if c < 128 {
            if let Some(Some(t)) = self.ascii.get(set as usize) {
                let n = t[c as usize];
                if n != UNKNOWN {
                    return n;
                }
            }
        } else if let Some(&n) = self.steps.get(&(set, c)) {
            return n;
        }
        let stacks = self.sets[set as usize].clone();
        let mut out = Vec::new();
        for &s in stacks.iter() {
            if s == NIL {
                continue;
            }
            let (pos, rest) = self.nodes[s as usize];
            let Elem::Chars(cs) = self.g.flat[pos as usize] else { continue };
            if self.g.sets[cs as usize].matches(c) {
                let next = self.push(pos + 1, rest);
                self.expand_into(next, &mut out);
            }
        }
        let n = self.intern_set(out);
        if c < 128 {
            if self.ascii.len() <= set as usize {
                self.ascii.resize(set as usize + 1, None);
            }
            if self.ascii_tables >= MEMO_CAP / 128 {
                self.ascii.iter_mut().for_each(|t| *t = None);
                self.ascii_tables = 0;
            }
            let t = self.ascii[set as usize].get_or_insert_with(|| {
                self.ascii_tables += 1;
                Box::new([UNKNOWN; 128])
            });
            t[c as usize] = n;
            return n;
        }
        if self.steps.len() >= MEMO_CAP {
            self.steps.clear();
        }
        self.steps.insert((set, c), n);
        n
    }

    fn is_empty(&self, set: u32) -> bool {
        set == self.empty
    }

    /// Whether some stack of `set` can take a codepoint in `lo..=hi`.
    fn can_take(&self, set: u32, (lo, hi): (u32, u32)) -> bool {
        self.sets[set as usize].iter().any(|&s| {
            s != NIL
                && match self.g.flat[self.nodes[s as usize].0 as usize] {
                    Elem::Chars(cs) => self.g.sets[cs as usize].intersects(lo, hi),
                    _ => false,
                }
        })
    }

    /// Feeds `bytes` from (`set`, `partial`): the set and partial character after them, or None
    /// once rejected.
    fn feed(&mut self, mut set: u32, mut p: Partial, bytes: &[u8]) -> Option<(u32, Partial)> {
        for &b in bytes {
            (set, p) = self.byte(set, p, b)?;
        }
        Some((set, p))
    }

    fn byte(&mut self, set: u32, p: Partial, b: u8) -> Option<(u32, Partial)> {
        let p = if p.left == 0 {
            let (value, left) = match b {
                0x00..=0x7F => (b as u32, 0),
                0xC2..=0xDF => ((b & 0x1F) as u32, 1),
                0xE0..=0xEF => ((b & 0x0F) as u32, 2),
                0xF0..=0xF4 => ((b & 0x07) as u32, 3),
                _ => return None, // not UTF-8 (a stray continuation, an overlong or too-high lead)
            };
            Partial { value, left, len: left + 1 }
        } else {
            if b & 0xC0 != 0x80 {
                return None;
            }
            Partial { value: (p.value << 6) | (b & 0x3F) as u32, left: p.left - 1, len: p.len }
        };
        if p.left > 0 {
            // a character under way: some stack must be able to take one it could become
            let range = p.range()?;
            return self.can_take(set, range).then_some((set, p));
        }
        let c = p.value;
        if c < min_codepoint(p.len) || (0xD800..=0xDFFF).contains(&c) || c > 0x10FFFF {
            return None;
        }
        let n = self.step(set, c);
        (!self.is_empty(n)).then_some((n, Partial::default()))
    }

    /// Whether the grammar is complete after the tokens so far (end-of-generation allowed).
    pub fn is_complete(&self) -> bool {
        self.partial.left == 0 && self.sets[self.state as usize].contains(&NIL)
    }

    /// Whether any token could continue (a stack with a character on top).
    pub fn can_continue(&self) -> bool {
        self.sets[self.state as usize].iter().any(|&s| s != NIL)
    }

    /// Bit i of the mask (`[n_vocab.div_ceil(64)]` words) set for each token the grammar allows
    /// next (end-of-generation tokens not included: see [`Matcher::is_complete`]).
    pub fn allowed(&mut self, trie: &TokenTrie) -> Arc<Vec<u64>> {
        let key = (self.state, self.partial);
        if let Some(m) = self.masks.get(&key) {
            return m.clone();
        }
        let mut mask = vec![0u64; trie.n_vocab.div_ceil(64)];
        // depth-first over the trie: (node, set, partial)
        let mut todo = vec![(0u32, self.state, self.partial)];
        while let Some((node, set, p)) = todo.pop() {
            let (e0, ne, t0, nt) = trie.nodes[node as usize];
            if node != 0 {
                for &t in &trie.ends[t0 as usize..(t0 + nt) as usize] {
                    mask[t as usize / 64] |= 1 << (t % 64);
                }
            }
            for &(b, child) in &trie.edges[e0 as usize..(e0 + ne) as usize] {
                if p.left == 0 && b < 128 {
                    // the common case inline: an ASCII character from a whole one
                    let known = self
                        .ascii
                        .get(set as usize)
                        .and_then(|t| t.as_deref())
                        .map_or(UNKNOWN, |t| t[b as usize]);
                    let n = if known != UNKNOWN { known } else { self.step(set, b as u32) };
                    if n != self.empty {
                        todo.push((child, n, Partial::default()));
                    }
                } else if let Some((s, q)) = self.byte(set, p, b) {
                    todo.push((child, s, q));
                }
            }
        }
        let mask = Arc::new(mask);
        if self.masks.len() >= MASK_CAP {
            self.masks.clear();
        }
        self.masks.insert(key, mask.clone());
        mask
    }

    /// Whether the grammar allows `bytes` next (the state unchanged; no text is not allowed).
    pub fn allows(&mut self, bytes: &[u8]) -> bool {
        !bytes.is_empty() && self.feed(self.state, self.partial, bytes).is_some()
    }

    /// Advances over a chosen token's bytes; an error if the grammar does not allow them.
    pub fn accept(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Err(Error::Grammar("a token with no text cannot match the grammar".into()));
        }
        match self.feed(self.state, self.partial, bytes) {
            Some((s, p)) => {
                self.state = s;
                self.partial = p;
                Ok(())
            }
            None => Err(Error::Grammar(format!(
                "the grammar does not allow {:?} here",
                String::from_utf8_lossy(bytes)
            ))),
        }
    }

    /// Whether `text` as a whole is in the grammar's language (from the start).
    pub fn accepts_text(g: Arc<Grammar>, text: &str) -> bool {
        let mut m = Matcher::new(g);
        if !text.is_empty() && m.accept(text.as_bytes()).is_err() {
            return false;
        }
        m.is_complete()
    }
}

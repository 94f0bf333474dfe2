//! JSON Schema → GBNF: a grammar that constrains generation to JSON valid under a schema.
//!
//! The output follows llama.cpp's converter as llama-cpp-python 0.3.36 ships it
//! (`llama_cpp.llama_grammar.json_schema_to_gbnf`, the Python port behind
//! `LlamaGrammar.from_json_schema` and its `response_format`): the same rule names, the same rule
//! text and the same whitespace rule (`space ::= " "?`: one optional space after each token and
//! nothing else), so that for the schemas below a model decodes greedily to the same text under our
//! grammar as under llama.cpp's. `tests/json_schema.rs` compares the text with that converter's
//! output for a set of schemas (`scripts/make_json_schema_fixture.py`).
//!
//! Supported: `type` (one of the seven JSON types, or a list of them), `properties`, `required`,
//! `additionalProperties` (`false` or absent: no other keys, as llama.cpp treats it; `true` or a
//! schema: more keys after the listed ones), `items` with `minItems`/`maxItems`, `enum`, `const`,
//! `anyOf`/`oneOf` (as a union: `oneOf`'s exclusivity is not enforced, exact when the
//! alternatives do not overlap), `$ref` to `#/...` in the same document (`$defs`, `definitions` or
//! any other place, recursion included), string `minLength`/`maxLength` and `format` `date`,
//! `time`, `date-time` and `uuid`; the annotations `title`, `description`, `default`, `examples`,
//! `$comment`, `$schema`, `deprecated`, `readOnly`, `writeOnly` (and `$id` at the root) are
//! ignored as they do not constrain. Every other keyword, and a supported keyword where this
//! conversion would not honour it (beside `$ref`, or `minItems` without `items`, ...), is refused
//! with an error naming the keyword and its JSON pointer, never ignored.
//!
//! The grammar follows llama.cpp's choices where they narrow JSON Schema: properties come in the
//! schema's order, an object with `properties` and no `additionalProperties` takes no other keys,
//! `{}` (and `{"type": "object"}`, and the values of `additionalProperties: true`) is any JSON
//! *object*, integers are written without fraction or exponent, numbers have at most 16 integral
//! and 16 fractional digits, and only one optional space may follow each token. It also keeps
//! where they widen it: `oneOf` is `anyOf`, extra keys may repeat a listed one. One rule is
//! llama.cpp's C++ converter's rather than llama-cpp-python's: `char ::= [^"\\\x7F\x00-\x1F] |
//! ...` keeps raw control characters out of strings (the Python port's `[^"\\]` lets a sampled
//! newline into a string, which no JSON parser takes). Where llama-cpp-python's
//! text is broken this converter writes the grammar llama.cpp's C++ converter would: string
//! literals with `"`, `\` or control characters are escaped for both JSON and GBNF, characters
//! outside the Basic Multilingual Plane are written `\U........` (not as UTF-16 surrogates, which
//! match nothing), and an optional property followed by `additionalProperties` keeps its comma.
//!
//! The module depends only on `std` and `serde_json`; errors are [`SchemaError`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// Why a schema cannot be converted: what is wrong and where (a JSON pointer into the schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// JSON pointer (RFC 6901) to the offending keyword or value; `""` is the whole schema.
    pub pointer: String,
    pub message: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "JSON schema: {} (at the schema's root)", self.message)
        } else {
            write!(f, "JSON schema: {} (at {})", self.message, self.pointer)
        }
    }
}

impl std::error::Error for SchemaError {}

type Res<T> = Result<T, SchemaError>;

fn err<T>(pointer: &str, message: impl Into<String>) -> Res<T> {
    Err(SchemaError { pointer: pointer.to_string(), message: message.into() })
}

/// Converts a schema given as JSON text; properties keep the order they have in the text (as in
/// llama.cpp, where the order of `properties` is the order the object's keys must come in).
pub fn json_schema_str_to_gbnf(schema: &str) -> Result<String, SchemaError> {
    convert(&parse_json(schema)?)
}

/// Converts a parsed schema. Properties come in the order the map iterates them: alphabetical
/// unless serde_json's `preserve_order` feature is on; [`json_schema_str_to_gbnf`] keeps the
/// text's order whatever the features.
pub fn json_schema_to_gbnf(schema: &serde_json::Value) -> Result<String, SchemaError> {
    // A round trip through text keeps this module's one input path (and its depth limit).
    let text = serde_json::to_string(schema).map_err(|e| SchemaError {
        pointer: String::new(),
        message: format!("the schema cannot be serialized: {e}"),
    })?;
    json_schema_str_to_gbnf(&text)
}

// ------------------------------------------------------------------------------------------------
// An ordered JSON tree, read by a small parser of our own: serde_json's map sorts keys unless a
// feature is on, and its default float parsing is not always correctly rounded (llama.cpp's
// converter writes `const`/`enum` numbers back out, as Python's json does, so the value must be
// the one Python reads: the nearest double; integers keep all their digits).

#[derive(Debug, Clone)]
enum Node {
    Null,
    Bool(bool),
    Num(Num),
    Str(String),
    Arr(Vec<Node>),
    Obj(Vec<(String, Node)>),
}

#[derive(Debug, Clone)]
enum Num {
    /// An integer as written (JSON has no leading zeros, so the text is canonical but for "-0").
    Int(String),
    Float(f64),
}

/// Nesting deeper than this is refused while reading (as serde_json's default limit).
const MAX_JSON_DEPTH: usize = 128;

struct Reader<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

fn parse_json(text: &str) -> Res<Node> {
    let mut r = Reader { s: text.as_bytes(), pos: 0, depth: 0 };
    r.ws();
    let v = r.value()?;
    r.ws();
    if r.pos < r.s.len() {
        return r.fail("trailing characters after the schema");
    }
    Ok(v)
}

impl Reader<'_> {
    fn fail<T>(&self, what: &str) -> Res<T> {
        let before = &self.s[..self.pos.min(self.s.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        err("", format!("the schema is not valid JSON: {what} at line {line} column {col}"))
    }

    fn ws(&mut self) {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.s[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Res<Node> {
        match self.peek() {
            None => self.fail("unexpected end"),
            Some(b'{') => self.nested(Reader::object),
            Some(b'[') => self.nested(Reader::array),
            Some(b'"') => Ok(Node::Str(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) if self.eat("true") => Ok(Node::Bool(true)),
            Some(_) if self.eat("false") => Ok(Node::Bool(false)),
            Some(_) if self.eat("null") => Ok(Node::Null),
            Some(_) => self.fail("expected a value"),
        }
    }

    fn nested(&mut self, f: fn(&mut Self) -> Res<Node>) -> Res<Node> {
        self.depth += 1;
        if self.depth > MAX_JSON_DEPTH {
            return self.fail(&format!("nesting deeper than {MAX_JSON_DEPTH}"));
        }
        let v = f(self);
        self.depth -= 1;
        v
    }

    fn object(&mut self) -> Res<Node> {
        self.pos += 1; // '{'
                       // A repeated key keeps its first position and its last value (Python's json.loads).
        let mut entries: Vec<(String, Node)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Node::Obj(entries));
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return self.fail("expected a string key");
            }
            let k = self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return self.fail("expected ':'");
            }
            self.pos += 1;
            self.ws();
            let v = self.value()?;
            match index.get(&k) {
                Some(&i) => entries[i].1 = v,
                None => {
                    index.insert(k.clone(), entries.len());
                    entries.push((k, v));
                }
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Node::Obj(entries));
                }
                _ => return self.fail("expected ',' or '}'"),
            }
        }
    }

    fn array(&mut self) -> Res<Node> {
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Node::Arr(items));
        }
        loop {
            self.ws();
            items.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Node::Arr(items));
                }
                _ => return self.fail("expected ',' or ']'"),
            }
        }
    }

    fn hex4(&mut self) -> Res<u32> {
        let digits = self.s.get(self.pos..self.pos + 4).and_then(|h| std::str::from_utf8(h).ok());
        match digits.and_then(|h| u32::from_str_radix(h, 16).ok()) {
            Some(v) if digits.is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())) => {
                self.pos += 4;
                Ok(v)
            }
            _ => self.fail("bad \\u escape"),
        }
    }

    fn string(&mut self) -> Res<String> {
        self.pos += 1; // '"'
        let mut out = String::new();
        loop {
            // Copy the run up to the next quote, backslash or control character as it is.
            let start = self.pos;
            while self.pos < self.s.len() && !matches!(self.s[self.pos], b'"' | b'\\' | 0..=0x1f) {
                self.pos += 1;
            }
            // The input is a &str and the run stops only at ASCII bytes: a whole UTF-8 slice.
            out.push_str(std::str::from_utf8(&self.s[start..self.pos]).unwrap_or_default());
            match self.peek() {
                None => return self.fail("unterminated string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let Some(e) = self.peek() else { return self.fail("unterminated string") };
                    self.pos += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xd800..0xdc00).contains(&hi) {
                                if !self.eat("\\u") {
                                    return self.fail("a high surrogate without its low surrogate");
                                }
                                let lo = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return self.fail("a high surrogate without its low surrogate");
                                }
                                char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00))
                            } else {
                                char::from_u32(hi)
                            };
                            match c {
                                Some(c) => out.push(c),
                                None => return self.fail("a lone low surrogate"),
                            }
                        }
                        _ => return self.fail("bad escape"),
                    }
                }
                Some(_) => return self.fail("a control character in a string"),
            }
        }
    }

    fn number(&mut self) -> Res<Node> {
        let start = self.pos;
        let digits = |r: &mut Self| {
            let at = r.pos;
            while r.peek().is_some_and(|b| b.is_ascii_digit()) {
                r.pos += 1;
            }
            r.pos > at
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return self.fail("bad number"),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            integer = false;
            if !digits(self) {
                return self.fail("bad number");
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            integer = false;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !digits(self) {
                return self.fail("bad number");
            }
        }
        // ASCII only, so a valid str.
        let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("0");
        if integer {
            let text = if text == "-0" { "0" } else { text };
            Ok(Node::Num(Num::Int(text.to_string())))
        } else {
            // Rust's parse is correctly rounded; out of range gives ±inf, as Python's float().
            Ok(Node::Num(Num::Float(text.parse().unwrap_or(0.0))))
        }
    }
}

impl Node {
    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Obj(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Num(_) => "a number",
            Node::Str(_) => "a string",
            Node::Arr(_) => "an array",
            Node::Obj(_) => "an object",
        }
    }

    /// Whether the value is an instance of JSON Schema type `ty`.
    fn has_type(&self, ty: &str) -> bool {
        match (self, ty) {
            (Node::Null, "null") | (Node::Bool(_), "boolean") | (Node::Num(_), "number") => true,
            (Node::Str(_), "string") | (Node::Arr(_), "array") | (Node::Obj(_), "object") => true,
            (Node::Num(Num::Int(_)), "integer") => true,
            (Node::Num(Num::Float(f)), "integer") => f.fract() == 0.0,
            _ => false,
        }
    }

    /// JSON equality (numbers by value, objects regardless of key order).
    fn json_eq(&self, other: &Node) -> bool {
        match (self, other) {
            (Node::Null, Node::Null) => true,
            (Node::Bool(a), Node::Bool(b)) => a == b,
            (Node::Num(Num::Int(a)), Node::Num(Num::Int(b))) => a == b,
            (Node::Num(a), Node::Num(b)) => a.as_f64() == b.as_f64(),
            (Node::Str(a), Node::Str(b)) => a == b,
            (Node::Arr(a), Node::Arr(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.json_eq(y)),
            (Node::Obj(a), Node::Obj(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| other.get(k).is_some_and(|w| v.json_eq(w)))
            }
            _ => false,
        }
    }
}

impl Num {
    fn as_f64(&self) -> f64 {
        match self {
            Num::Int(t) => t.parse().unwrap_or(f64::NAN),
            Num::Float(f) => *f,
        }
    }
}

// ------------------------------------------------------------------------------------------------
// JSON text as Python's json.dumps writes it (", " and ": " separators, floats as repr), which is
// the text llama.cpp's grammar makes the model write for `const` and `enum` values and keys.

fn json_text(v: &Node, out: &mut String) {
    match v {
        Node::Null => out.push_str("null"),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Num(Num::Int(t)) => out.push_str(t),
        Node::Num(Num::Float(f)) => out.push_str(&py_float_repr(*f)),
        Node::Str(s) => json_string(s, out),
        Node::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                json_text(item, out);
            }
            out.push(']');
        }
        Node::Obj(entries) => {
            out.push('{');
            for (i, (k, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                json_string(k, out);
                out.push_str(": ");
                json_text(item, out);
            }
            out.push('}');
        }
    }
}

/// A JSON string literal: `"` and `\` and control characters escaped, everything else itself.
/// (json.dumps writes non-ASCII as `\u` escapes, which llama.cpp's GBNF then reads as the
/// character itself: the text to match is the character, as here.)
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: the shortest digits that round-trip, positional for decimal exponents
/// -4..=15 (with at least one fractional digit), else `d.ddde±XX`.
fn py_float_repr(f: f64) -> String {
    if !f.is_finite() {
        // Not reachable from JSON text; Python would write these names.
        return if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0.0");
    }
    let shortest = format!("{:e}", f.abs()); // shortest round-trip digits, e.g. "1.2345e-5"
                                             // Of the strings with that many digits that round-trip, Python's repr takes the nearest to
                                             // the exact value (ties to even): the correctly rounded one, when it round-trips, is that.
    let n_digits = shortest.split('e').next().unwrap_or("").bytes().filter(u8::is_ascii_digit).count();
    let nearest = format!("{:.*e}", n_digits.saturating_sub(1), f.abs());
    let sci = if nearest.parse::<f64>() == Ok(f.abs()) { nearest } else { shortest };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let decpt = exp + 1; // value = 0.DIGITS × 10^decpt
    let n = digits.len() as i32;
    if !(-4 < decpt && decpt <= 16) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{frac}e{esign}{:02}", exp.unsigned_abs())
    } else if decpt <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt >= n {
        format!("{sign}{digits}{}.0", "0".repeat((decpt - n) as usize))
    } else {
        let (int, frac) = digits.split_at(decpt as usize);
        format!("{sign}{int}.{frac}")
    }
}

/// A GBNF string literal matching `text` exactly. Characters from U+007F up are written as
/// `\uXXXX` (as llama-cpp-python's output has them) or `\UXXXXXXXX` beyond the BMP.
fn gbnf_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x7f => out.push(c),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn literal_of(v: &Node) -> String {
    let mut text = String::new();
    json_text(v, &mut text);
    gbnf_literal(&text)
}

/// A `const`/`enum` value must be writable as JSON: a number beyond the double range would come
/// out as Python's `Infinity` (as llama-cpp-python writes it), which is not JSON.
fn check_finite(v: &Node, ptr: &str) -> Res<()> {
    match v {
        Node::Num(Num::Float(f)) if !f.is_finite() => err(
            ptr,
            "a number beyond the range of a double (it would be written as Infinity, which is not JSON)",
        ),
        Node::Arr(items) => items.iter().try_for_each(|x| check_finite(x, ptr)),
        Node::Obj(entries) => entries.iter().try_for_each(|(_, x)| check_finite(x, ptr)),
        _ => Ok(()),
    }
}

// ------------------------------------------------------------------------------------------------
// llama.cpp's built-in rules (names and text as its converter writes them).

const SPACE_RULE: &str = "\" \"?";

fn up_to_15_digits() -> String {
    repetition("[0-9]", 0, Some(15), None)
}

fn builtin(name: &str) -> Option<(String, &'static [&'static str])> {
    let hex = |n: usize| "[0-9a-fA-F]".repeat(n);
    let (text, deps): (&str, &'static [&'static str]) = match name {
        "boolean" => (r#"("true" | "false") space"#, &[]),
        "decimal-part" => return Some((format!("[0-9] {}", up_to_15_digits()), &[])),
        "integral-part" => return Some((format!("[0-9] | [1-9] {}", up_to_15_digits()), &[])),
        "number" => (
            r#"("-"? integral-part) ("." decimal-part)? ([eE] [-+]? integral-part)? space"#,
            &["integral-part", "decimal-part"],
        ),
        "integer" => (r#"("-"? integral-part) space"#, &["integral-part"]),
        "value" => (
            "object | array | string | number | boolean | null",
            &["object", "array", "string", "number", "boolean", "null"],
        ),
        "object" => (
            r#""{" space ( string ":" space value ("," space string ":" space value)* )? "}" space"#,
            &["string", "value"],
        ),
        "array" => (r#""[" space ( value ("," space value)* )? "]" space"#, &["value"]),
        "uuid" => {
            let groups = [hex(8), hex(4), hex(4), hex(4), hex(12)].join(r#" "-" "#);
            return Some((format!(r#""\"" {groups} "\"" space"#), &[]));
        }
        "char" => {
            // llama.cpp's C++ converter's rule: no raw control characters in a string, so every
            // output parses as JSON (llama-cpp-python's Python port writes `[^"\\]`)
            (
                r#"[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])"#,
                &[],
            )
        }
        "string" => (r#""\"" char* "\"" space"#, &["char"]),
        "null" => (r#""null" space"#, &[]),
        "date" => (
            r#"[0-9] [0-9] [0-9] [0-9] "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [1-2] [0-9] | "3" [0-1] )"#,
            &[],
        ),
        "time" => (
            concat!(
                r#"([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9] [0-9] [0-9] )? "#,
                r#"( "Z" | ( "+" | "-" ) ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )"#
            ),
            &[],
        ),
        "date-time" => (r#"date "T" time"#, &["date", "time"]),
        "date-string" => (r#""\"" date "\"" space"#, &["date"]),
        "time-string" => (r#""\"" time "\"" space"#, &["time"]),
        "date-time-string" => (r#""\"" date-time "\"" space"#, &["date-time"]),
        _ => return None,
    };
    Some((text.to_string(), deps))
}

/// Names a schema's own rule may not take (llama.cpp appends `-`).
const RESERVED_NAMES: &[&str] = &[
    "root",
    "dot",
    "boolean",
    "decimal-part",
    "integral-part",
    "number",
    "integer",
    "value",
    "object",
    "array",
    "uuid",
    "char",
    "string",
    "null",
    "date",
    "time",
    "date-time",
    "date-string",
    "time-string",
    "date-time-string",
];

/// `item` repeated `min..=max` times (unbounded without `max`), with `sep` between items, in
/// llama.cpp's shape: required copies, then nested optional groups.
fn repetition(item: &str, min: u64, max: Option<u64>, sep: Option<&str>) -> String {
    if sep.is_none() {
        if min == 0 && max == Some(1) {
            return format!("{item}?");
        }
        if min == 1 && max.is_none() {
            return format!("{item}+");
        }
    }
    let mut out = String::new();
    if min > 0 {
        let joiner = match sep {
            Some(s) => format!(" {s} "),
            None => " ".to_string(),
        };
        out = vec![item; min as usize].join(&joiner);
    }
    if min > 0 && max != Some(min) {
        out.push(' ');
    }
    match max {
        Some(max) => out.push_str(&optional_repetitions(item, max.saturating_sub(min), min > 0, sep)),
        None => {
            let group = match sep {
                Some(s) => format!("({s} {item})"),
                None => format!("({item})"),
            };
            if min == 0 && sep.is_some() {
                out = format!("({item} {group}*)?");
            } else {
                out.push_str(&group);
                out.push('*');
            }
        }
    }
    out
}

/// Up to `n` more items as nested optional groups: `(a (a (a)?)?)?`, or with a separator
/// `("," a ("," a)?)?` (`prefix`: the first one also takes the separator).
fn optional_repetitions(item: &str, n: u64, prefix: bool, sep: Option<&str>) -> String {
    let content = match sep {
        Some(s) if prefix => format!("{s} {item}"),
        _ => item.to_string(),
    };
    if n == 0 {
        return String::new();
    }
    if n == 1 {
        return format!("({content})?");
    }
    if sep.is_some() && !prefix {
        return format!("({content} {})?", optional_repetitions(item, n - 1, true, sep));
    }
    let mut out = String::new();
    for _ in 0..n {
        out.push('(');
        out.push_str(&content);
        out.push(' ');
    }
    out.pop();
    out.push_str(&")?".repeat(n as usize));
    out
}

// ------------------------------------------------------------------------------------------------
// The conversion.

const TYPES: &[&str] = &["string", "number", "integer", "boolean", "null", "object", "array"];

/// Keywords that only annotate: they constrain nothing, so dropping them loses nothing.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "$comment",
    "$schema",
    "deprecated",
    "readOnly",
    "writeOnly",
    // places for subschemas that `$ref` points into; they match nothing by themselves
    "$defs",
    "definitions",
];

const SUPPORTED: &[&str] = &[
    "$ref",
    "anyOf",
    "oneOf",
    "type",
    "const",
    "enum",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "format",
    "minLength",
    "maxLength",
];

/// Schemas nested deeper than this (counting each `$ref` followed) are refused, which bounds
/// the recursion whatever the input.
const MAX_DEPTH: usize = 128;
/// The most copies of an item (`minItems`, `minLength`) written out.
const MAX_MIN_REPEAT: u64 = 10_000;
/// The most optional copies (`maxItems - minItems`): each is one more nested group for the
/// grammar parser to descend.
const MAX_OPTIONAL_REPEAT: u64 = 1_000;

fn pointer_child(ptr: &str, key: &str) -> String {
    format!("{ptr}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// The branch of llama.cpp's converter a schema takes, in its order of precedence.
#[derive(Clone, Copy, PartialEq)]
enum Branch {
    Ref,
    Union(&'static str),
    TypeList,
    Const,
    Enum,
    Object,
    Array,
    Format,
    StringLength,
    AnyObject,
    Primitive,
}

impl Branch {
    fn allowed(self) -> &'static [&'static str] {
        match self {
            Branch::Ref => &["$ref"],
            Branch::Union("oneOf") => &["oneOf"],
            Branch::Union(_) => &["anyOf"],
            Branch::TypeList => &["type"],
            Branch::Const => &["const", "type", "enum"],
            Branch::Enum => &["enum", "type"],
            Branch::Object => &["type", "properties", "required", "additionalProperties"],
            Branch::Array => &["type", "items", "minItems", "maxItems"],
            Branch::Format => &["type", "format"],
            Branch::StringLength => &["type", "minLength", "maxLength"],
            Branch::AnyObject => &["type", "additionalProperties", "required"],
            Branch::Primitive => &["type"],
        }
    }

    fn context(self, ty: Option<&str>) -> String {
        match self {
            Branch::Ref => "beside \"$ref\" (a schema with \"$ref\" is the referenced schema only)".into(),
            Branch::Union(k) => format!("beside \"{k}\" (put it inside each alternative)"),
            Branch::TypeList => "beside a list of types (use \"anyOf\" with one schema per type)".into(),
            Branch::Const => "beside \"const\"".into(),
            Branch::Enum => "beside \"enum\"".into(),
            _ => match ty {
                Some(t) => format!("with \"type\": \"{t}\""),
                None => "in a schema without \"type\"".into(),
            },
        }
    }
}

struct Converter<'a> {
    root: &'a Node,
    rules: BTreeMap<String, String>,
    /// `$ref` targets (as canonical pointers) already converted, and their rule names.
    refs_done: HashMap<String, String>,
    /// `$ref` targets being converted: the rule name they will get and the value of `guard`
    /// when they started (a reference back at the same `guard` is left recursion).
    refs_active: HashMap<String, (String, usize)>,
    /// Targets referred to from inside their own conversion.
    refs_recursive: HashSet<String>,
    /// How many objects/arrays enclose the current schema (each begins with a literal).
    guard: usize,
    depth: usize,
}

fn convert(root: &Node) -> Res<String> {
    let mut c = Converter {
        root,
        rules: BTreeMap::new(),
        refs_done: HashMap::new(),
        refs_active: HashMap::new(),
        refs_recursive: HashSet::new(),
        guard: 0,
        depth: 0,
    };
    c.rules.insert("space".into(), SPACE_RULE.into());
    c.visit(root, "", "")?;
    let mut out = String::new();
    for (i, (name, rule)) in c.rules.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(name);
        out.push_str(" ::= ");
        out.push_str(rule);
    }
    Ok(out)
}

/// llama.cpp's rule-name escaping: every run of characters outside `[a-zA-Z0-9-]` becomes `-`.
fn escape_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    out
}

fn rule_name_for(name: &str) -> String {
    if RESERVED_NAMES.contains(&name) {
        format!("{name}-")
    } else if name.is_empty() {
        "root".into()
    } else {
        name.to_string()
    }
}

/// `name` with a `-` separator before a child's suffix, or nothing at the root.
fn prefix(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!("{name}-")
    }
}

fn count(v: &Node, ptr: &str, key: &str, limit: u64) -> Res<u64> {
    let n = match v {
        Node::Num(Num::Int(t)) if !t.starts_with('-') => t.parse::<u64>().unwrap_or(u64::MAX),
        Node::Num(Num::Float(f)) if f.fract() == 0.0 && *f >= 0.0 => {
            if *f > limit as f64 {
                u64::MAX
            } else {
                *f as u64
            }
        }
        _ => return err(ptr, format!("\"{key}\" must be a non-negative integer, not {}", v.kind())),
    };
    if n > limit {
        return err(ptr, format!("\"{key}\" is {n}; at most {limit} is supported"));
    }
    Ok(n)
}

impl Converter<'_> {
    /// llama.cpp's `_add_rule`: the escaped name, or that name with the first free number
    /// appended if a different rule has it.
    fn add_rule(&mut self, name: &str, rule: &str) -> String {
        let esc = escape_name(name);
        let key = match self.rules.get(&esc) {
            None => esc,
            Some(existing) if existing == rule => esc,
            Some(_) => {
                let mut i = 0u64;
                loop {
                    let k = format!("{esc}{i}");
                    match self.rules.get(&k) {
                        Some(existing) if existing != rule => i += 1,
                        _ => break k,
                    }
                }
            }
        };
        self.rules.insert(key.clone(), rule.to_string());
        key
    }

    fn add_primitive(&mut self, name: &str, builtin_name: &str) -> String {
        let Some((content, deps)) = builtin(builtin_name) else {
            return self.add_rule(name, "");
        };
        let key = self.add_rule(name, &content);
        for dep in deps {
            if !self.rules.contains_key(*dep) {
                self.add_primitive(dep, dep);
            }
        }
        key
    }

    fn visit(&mut self, schema: &Node, ptr: &str, name: &str) -> Res<String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(
                ptr,
                format!("the schema nests deeper than {MAX_DEPTH} levels (counting $refs followed)"),
            );
        }
        let r = self.visit_inner(schema, ptr, name);
        self.depth -= 1;
        r
    }

    fn visit_inner(&mut self, schema: &Node, ptr: &str, name: &str) -> Res<String> {
        let entries = match schema {
            Node::Obj(entries) => entries,
            Node::Bool(_) => {
                return err(
                    ptr,
                    "boolean schemas (true/false) are not supported here; write {} or an explicit schema",
                )
            }
            other => return err(ptr, format!("a schema must be a JSON object, not {}", other.kind())),
        };
        // Every keyword must be one this converter knows.
        for (k, _) in entries {
            if ANNOTATIONS.contains(&k.as_str())
                || SUPPORTED.contains(&k.as_str())
                || (k == "$id" && ptr.is_empty())
            {
                continue;
            }
            return err(
                &pointer_child(ptr, k),
                format!(
                    "unsupported JSON Schema keyword \"{k}\" (supported: {}; annotations such as \"title\" and \
                     \"description\" are ignored)",
                    SUPPORTED.join(", ")
                ),
            );
        }

        let rule_name = rule_name_for(name);
        let ty = self.read_type(schema, ptr)?;
        let has = |k: &str| schema.get(k).is_some();
        let ty_one = match &ty {
            Some(TypeSpec::One(t)) => Some(*t),
            _ => None,
        };
        let ty_is = |allowed: &[Option<&str>]| {
            matches!(&ty, None | Some(TypeSpec::One(_))) && allowed.contains(&ty_one)
        };

        let branch = if has("$ref") {
            Branch::Ref
        } else if has("oneOf") {
            Branch::Union("oneOf")
        } else if has("anyOf") {
            Branch::Union("anyOf")
        } else if matches!(ty, Some(TypeSpec::Many(_))) {
            Branch::TypeList
        } else if has("const") {
            Branch::Const
        } else if has("enum") {
            Branch::Enum
        } else if ty_is(&[None, Some("object")])
            && (has("properties")
                || schema.get("additionalProperties").is_some_and(|a| !matches!(a, Node::Bool(true))))
        {
            Branch::Object
        } else if ty_is(&[None, Some("array")]) && has("items") {
            Branch::Array
        } else if ty_is(&[None, Some("string")]) && has("format") {
            Branch::Format
        } else if ty_one == Some("string") && (has("minLength") || has("maxLength")) {
            Branch::StringLength
        } else if ty_one == Some("object") || entries.iter().all(|(k, _)| !SUPPORTED.contains(&k.as_str())) {
            Branch::AnyObject
        } else {
            Branch::Primitive
        };

        // A supported keyword this branch would not honour is refused, not dropped.
        for (k, _) in entries {
            if !SUPPORTED.contains(&k.as_str()) || branch.allowed().contains(&k.as_str()) {
                continue;
            }
            let generic = !matches!(
                branch,
                Branch::Ref | Branch::Union(_) | Branch::TypeList | Branch::Const | Branch::Enum
            );
            let hint = match k.as_str() {
                _ if !generic => "",
                "minItems" | "maxItems" => " (it is supported only with \"items\")",
                "minLength" | "maxLength" => " (it is supported only with \"type\": \"string\")",
                "properties" | "additionalProperties" | "required" => " (it applies to objects)",
                "items" => " (it applies to arrays)",
                "format" => " (it is supported only on strings)",
                _ => "",
            };
            return err(
                &pointer_child(ptr, k),
                format!("keyword \"{k}\" is not supported {}{hint}", branch.context(ty_one)),
            );
        }

        match branch {
            Branch::Ref => {
                let target = self.resolve_ref(schema.get("$ref").unwrap_or(&Node::Null), ptr)?;
                Ok(self.add_rule(&rule_name, &target))
            }
            Branch::Union(k) => {
                let alts_ptr = pointer_child(ptr, k);
                let alts = match schema.get(k) {
                    Some(Node::Arr(a)) if !a.is_empty() => a,
                    Some(Node::Arr(_)) => return err(&alts_ptr, format!("\"{k}\" must not be empty")),
                    Some(other) => {
                        return err(
                            &alts_ptr,
                            format!("\"{k}\" must be an array of schemas, not {}", other.kind()),
                        )
                    }
                    None => return err(&alts_ptr, format!("\"{k}\" is missing")),
                };
                let mut parts = Vec::with_capacity(alts.len());
                for (i, alt) in alts.iter().enumerate() {
                    let alt_name = union_name(name, i);
                    parts.push(self.visit(alt, &pointer_child(&alts_ptr, &i.to_string()), &alt_name)?);
                }
                Ok(self.add_rule(&rule_name, &parts.join(" | ")))
            }
            Branch::TypeList => {
                let Some(TypeSpec::Many(types)) = ty else { return err(ptr, "internal: type list expected") };
                let types_ptr = pointer_child(ptr, "type");
                let mut parts = Vec::with_capacity(types.len());
                for (i, t) in types.iter().enumerate() {
                    let alt = Node::Obj(vec![("type".into(), Node::Str((*t).into()))]);
                    let alt_name = union_name(name, i);
                    parts.push(self.visit(&alt, &pointer_child(&types_ptr, &i.to_string()), &alt_name)?);
                }
                Ok(self.add_rule(&rule_name, &parts.join(" | ")))
            }
            Branch::Const => {
                let value = schema.get("const").unwrap_or(&Node::Null);
                let const_ptr = pointer_child(ptr, "const");
                check_value_type(value, ty_one, &const_ptr, "\"const\"")?;
                if let Some(e) = schema.get("enum") {
                    let ok = matches!(e, Node::Arr(vals) if vals.iter().any(|v| v.json_eq(value)));
                    if !ok {
                        return err(
                            &pointer_child(ptr, "enum"),
                            "\"enum\" does not contain the \"const\" value",
                        );
                    }
                }
                check_finite(value, &const_ptr)?;
                Ok(self.add_rule(&rule_name, &literal_of(value)))
            }
            Branch::Enum => {
                let enum_ptr = pointer_child(ptr, "enum");
                let values = match schema.get("enum") {
                    Some(Node::Arr(v)) if !v.is_empty() => v,
                    Some(Node::Arr(_)) => return err(&enum_ptr, "\"enum\" must not be empty"),
                    Some(other) => {
                        return err(&enum_ptr, format!("\"enum\" must be an array, not {}", other.kind()))
                    }
                    None => return err(&enum_ptr, "\"enum\" is missing"),
                };
                let mut parts = Vec::with_capacity(values.len());
                for (i, v) in values.iter().enumerate() {
                    check_value_type(
                        v,
                        ty_one,
                        &pointer_child(&enum_ptr, &i.to_string()),
                        "this \"enum\" value",
                    )?;
                    check_finite(v, &pointer_child(&enum_ptr, &i.to_string()))?;
                    parts.push(literal_of(v));
                }
                Ok(self.add_rule(&rule_name, &parts.join(" | ")))
            }
            Branch::Object => {
                let rule = self.object_rule(schema, ptr, name)?;
                Ok(self.add_rule(&rule_name, &rule))
            }
            Branch::Array => {
                let items_ptr = pointer_child(ptr, "items");
                let items = schema.get("items").unwrap_or(&Node::Null);
                if let Node::Arr(_) = items {
                    return err(
                        &items_ptr,
                        "\"items\" as an array (tuple validation) is not supported; give one schema for every item",
                    );
                }
                let min = match schema.get("minItems") {
                    Some(v) => count(v, &pointer_child(ptr, "minItems"), "minItems", MAX_MIN_REPEAT)?,
                    None => 0,
                };
                let max = match schema.get("maxItems") {
                    Some(v) => Some(count(v, &pointer_child(ptr, "maxItems"), "maxItems", u64::MAX)?),
                    None => None,
                };
                check_range(min, max, ptr, "minItems", "maxItems")?;
                self.guard += 1;
                let item_rule = self.visit(items, &items_ptr, &format!("{}item", prefix(name)))?;
                self.guard -= 1;
                let body = repetition(&item_rule, min, max, Some("\",\" space"));
                Ok(self.add_rule(&rule_name, &format!("\"[\" space {body} \"]\" space")))
            }
            Branch::Format => {
                let fmt_ptr = pointer_child(ptr, "format");
                let format = match schema.get("format") {
                    Some(Node::Str(s)) => s.as_str(),
                    Some(other) => {
                        return err(&fmt_ptr, format!("\"format\" must be a string, not {}", other.kind()))
                    }
                    None => return err(&fmt_ptr, "\"format\" is missing"),
                };
                let is_uuid = format == "uuid"
                    || (format.len() == 5
                        && format.starts_with("uuid")
                        && matches!(format.as_bytes()[4], b'1'..=b'5'));
                if is_uuid {
                    let n = if rule_name == "root" { "root" } else { format };
                    Ok(self.add_primitive(n, "uuid"))
                } else if matches!(format, "date" | "time" | "date-time") {
                    let prim = format!("{format}-string");
                    let target = self.add_primitive(&prim, &prim);
                    Ok(self.add_rule(&rule_name, &target))
                } else {
                    err(
                        &fmt_ptr,
                        format!(
                            "unsupported string format \"{format}\" (supported: date, time, date-time, uuid, \
                             uuid1..uuid5)"
                        ),
                    )
                }
            }
            Branch::StringLength => {
                let min = match schema.get("minLength") {
                    Some(v) => count(v, &pointer_child(ptr, "minLength"), "minLength", MAX_MIN_REPEAT)?,
                    None => 0,
                };
                let max = match schema.get("maxLength") {
                    Some(v) => Some(count(v, &pointer_child(ptr, "maxLength"), "maxLength", u64::MAX)?),
                    None => None,
                };
                check_range(min, max, ptr, "minLength", "maxLength")?;
                let ch = self.add_primitive("char", "char");
                let body = repetition(&ch, min, max, None);
                Ok(self.add_rule(&rule_name, &format!("\"\\\"\" {body} \"\\\"\" space")))
            }
            Branch::AnyObject => {
                if let Some(req) = schema.get("required") {
                    let names = required_names(req, &pointer_child(ptr, "required"))?;
                    if let Some(first) = names.first() {
                        return err(
                            &pointer_child(ptr, "required"),
                            format!("required property \"{first}\" is not listed in \"properties\""),
                        );
                    }
                }
                let target = self.add_primitive("object", "object");
                Ok(self.add_rule(&rule_name, &target))
            }
            Branch::Primitive => {
                // Every keyword but "type" was refused above, so the type is one of the primitives.
                let Some(t) = ty_one.filter(|t| builtin(t).is_some()) else {
                    return err(ptr, "internal: a primitive type was expected");
                };
                let n = if rule_name == "root" { "root" } else { t };
                Ok(self.add_primitive(n, t))
            }
        }
    }

    fn read_type(&self, schema: &Node, ptr: &str) -> Res<Option<TypeSpec>> {
        let type_ptr = pointer_child(ptr, "type");
        let one = |v: &Node, p: &str| -> Res<&'static str> {
            match v {
                Node::Str(s) => match TYPES.iter().find(|t| **t == s) {
                    Some(t) => Ok(*t),
                    None => {
                        err(p, format!("unknown type \"{s}\" (JSON Schema's types: {})", TYPES.join(", ")))
                    }
                },
                other => err(p, format!("a type must be a string, not {}", other.kind())),
            }
        };
        match schema.get("type") {
            None => Ok(None),
            Some(Node::Arr(list)) => {
                if list.is_empty() {
                    return err(&type_ptr, "the list of types is empty");
                }
                let mut types = Vec::with_capacity(list.len());
                for (i, v) in list.iter().enumerate() {
                    types.push(one(v, &pointer_child(&type_ptr, &i.to_string()))?);
                }
                Ok(Some(TypeSpec::Many(types)))
            }
            Some(v) => Ok(Some(TypeSpec::One(one(v, &type_ptr)?))),
        }
    }

    /// llama.cpp's object rule: the required properties in order, then the optional ones, each
    /// optional one able to start the optional tail (so any subset, in schema order, may appear).
    fn object_rule(&mut self, schema: &Node, ptr: &str, name: &str) -> Res<String> {
        let props_ptr = pointer_child(ptr, "properties");
        let props: &[(String, Node)] = match schema.get("properties") {
            None => &[],
            Some(Node::Obj(entries)) => entries,
            Some(other) => {
                return err(&props_ptr, format!("\"properties\" must be an object, not {}", other.kind()))
            }
        };
        let required: HashSet<String> = match schema.get("required") {
            None => HashSet::new(),
            Some(req) => {
                let req_ptr = pointer_child(ptr, "required");
                let names = required_names(req, &req_ptr)?;
                let listed: HashSet<&str> = props.iter().map(|(k, _)| k.as_str()).collect();
                for (i, n) in names.iter().enumerate() {
                    if !listed.contains(n.as_str()) {
                        return err(
                            &pointer_child(&req_ptr, &i.to_string()),
                            format!("required property \"{n}\" is not listed in \"properties\""),
                        );
                    }
                }
                names.into_iter().collect()
            }
        };
        let additional = match schema.get("additionalProperties") {
            None | Some(Node::Bool(false)) => None,
            Some(Node::Bool(true)) => Some(None),
            Some(s @ Node::Obj(_)) => Some(Some(s)),
            Some(other) => {
                return err(
                    &pointer_child(ptr, "additionalProperties"),
                    format!("\"additionalProperties\" must be a boolean or a schema, not {}", other.kind()),
                )
            }
        };

        let pre = prefix(name);
        let mut kv_names: Vec<String> = Vec::with_capacity(props.len());
        for (prop, prop_schema) in props {
            let prop_ptr = pointer_child(&props_ptr, prop);
            if name.is_empty() && prop.is_empty() {
                return err(&prop_ptr, "an empty property name at the top level is not supported");
            }
            self.guard += 1;
            let value_rule = self.visit(prop_schema, &prop_ptr, &format!("{pre}{prop}"))?;
            self.guard -= 1;
            let key_literal = literal_of(&Node::Str(prop.clone()));
            kv_names.push(self.add_rule(
                &format!("{pre}{prop}-kv"),
                &format!("{key_literal} space \":\" space {value_rule}"),
            ));
        }

        // Optional members: an index into `props`, or None for the additional properties.
        let required_props: Vec<usize> =
            (0..props.len()).filter(|&i| required.contains(&props[i].0)).collect();
        let mut optional: Vec<Option<usize>> =
            (0..props.len()).filter(|&i| !required.contains(&props[i].0)).map(Some).collect();
        let mut additional_kv = String::new();
        if let Some(value_schema) = additional {
            let sub = format!("{pre}additional");
            let any = Node::Obj(Vec::new());
            let value_ptr = pointer_child(ptr, "additionalProperties");
            self.guard += 1;
            let value_rule = self.visit(value_schema.unwrap_or(&any), &value_ptr, &format!("{sub}-value"))?;
            self.guard -= 1;
            let key_rule = self.add_primitive("string", "string");
            additional_kv =
                self.add_rule(&format!("{sub}-kv"), &format!("{key_rule} \":\" space {value_rule}"));
            optional.push(None);
        }
        let kv_of = |k: Option<usize>| -> &str {
            match k {
                Some(i) => &kv_names[i],
                None => &additional_kv,
            }
        };

        let mut rule = String::from("\"{\" space ");
        let req: Vec<&str> = required_props.iter().map(|&i| kv_names[i].as_str()).collect();
        rule.push_str(&req.join(" \",\" space "));

        if !optional.is_empty() {
            rule.push_str(" (");
            if !required_props.is_empty() {
                rule.push_str(" \",\" space ( ");
            }
            // The additional properties' list rule (llama-cpp-python adds it first).
            let additional_kvs = if optional.last() == Some(&None) {
                self.add_rule(
                    &format!("{pre}additional-kvs"),
                    &format!("{additional_kv} ( \",\" space {additional_kv} )*"),
                )
            } else {
                String::new()
            };
            // rest[j]: what may follow optional[j]; the deepest is made first, as llama.cpp does.
            let n = optional.len();
            let mut rest: Vec<String> = vec![String::new(); n];
            for j in (0..n.saturating_sub(1)).rev() {
                let next = optional[j + 1];
                let mut body = match next {
                    Some(_) => format!("( \",\" space {} )?", kv_of(next)),
                    // llama-cpp-python writes `additional-kvs` here, without the comma.
                    None => format!("( \",\" space {additional_kv} )*"),
                };
                if j + 1 < n - 1 {
                    body.push(' ');
                    body.push_str(&rest[j + 1]);
                }
                let key = match optional[j] {
                    Some(i) => props[i].0.as_str(),
                    None => "*",
                };
                rest[j] = self.add_rule(&format!("{pre}{key}-rest"), &body);
            }
            let mut alts = Vec::with_capacity(n);
            for (i, k) in optional.iter().enumerate() {
                let mut alt = match k {
                    Some(_) => kv_of(*k).to_string(),
                    None => additional_kvs.clone(),
                };
                if i < n - 1 {
                    alt.push(' ');
                    alt.push_str(&rest[i]);
                }
                alts.push(alt);
            }
            rule.push_str(&alts.join(" | "));
            if !required_props.is_empty() {
                rule.push_str(" )");
            }
            rule.push_str(" )?");
        }
        rule.push_str(" \"}\" space");
        Ok(rule)
    }

    /// The rule name for a `#/...` reference, converting its target the first time.
    fn resolve_ref(&mut self, r: &Node, ptr: &str) -> Res<String> {
        let ref_ptr = pointer_child(ptr, "$ref");
        let Node::Str(reference) = r else {
            return err(&ref_ptr, format!("\"$ref\" must be a string, not {}", r.kind()));
        };
        let Some(path) = reference.strip_prefix("#/") else {
            let why = if reference == "#" {
                "a reference to the whole schema (\"#\") is not supported; put the schema in \"$defs\" and refer to it there"
                    .to_string()
            } else {
                format!(
                    "$ref \"{reference}\" is not supported: only references into this schema (\"#/...\") are"
                )
            };
            return err(&ref_ptr, why);
        };
        // Walk the pointer (RFC 6901 tokens, percent-decoded as a URI fragment).
        let mut target = self.root;
        let mut target_ptr = String::new();
        for raw in path.split('/') {
            let token = percent_decode(raw).replace("~1", "/").replace("~0", "~");
            let next = match target {
                Node::Obj(_) => target.get(&token),
                Node::Arr(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match next {
                Some(n) => target = n,
                None => {
                    let at = if target_ptr.is_empty() { "the schema's root".to_string() } else { target_ptr };
                    return err(
                        &ref_ptr,
                        format!("$ref \"{reference}\" does not resolve: {at} has no \"{token}\""),
                    );
                }
            }
            target_ptr = pointer_child(&target_ptr, &token);
        }
        if let Some(done) = self.refs_done.get(&target_ptr) {
            return Ok(done.clone());
        }
        if let Some((name, guard)) = self.refs_active.get(&target_ptr) {
            if *guard == self.guard {
                return err(
                    &ref_ptr,
                    format!(
                        "$ref \"{reference}\" refers back to itself without an object or array in between (left \
                         recursion matches nothing)"
                    ),
                );
            }
            let name = name.clone();
            self.refs_recursive.insert(target_ptr);
            return Ok(name);
        }
        // llama.cpp names the target's rule after the reference's last segment.
        let ref_name = reference.rsplit('/').next().unwrap_or("");
        if ref_name.is_empty() {
            return err(
                &ref_ptr,
                format!("$ref \"{reference}\" ends in an empty name, which cannot name a rule"),
            );
        }
        let predicted = escape_name(&rule_name_for(ref_name));
        self.refs_active.insert(target_ptr.clone(), (predicted.clone(), self.guard));
        let key = self.visit(target, &target_ptr, ref_name);
        self.refs_active.remove(&target_ptr);
        let key = key?;
        if self.refs_recursive.contains(&target_ptr) && key != predicted {
            return err(
                &ref_ptr,
                format!(
                    "the recursive $ref \"{reference}\" cannot be named \"{predicted}\" (another rule has that name); \
                     rename the definition"
                ),
            );
        }
        self.refs_done.insert(target_ptr, key.clone());
        Ok(key)
    }
}

enum TypeSpec {
    One(&'static str),
    Many(Vec<&'static str>),
}

fn union_name(name: &str, i: usize) -> String {
    if name.is_empty() {
        format!("alternative-{i}")
    } else {
        format!("{name}-{i}")
    }
}

fn check_value_type(v: &Node, ty: Option<&str>, ptr: &str, what: &str) -> Res<()> {
    match ty {
        Some(t) if !v.has_type(t) => {
            err(ptr, format!("{what} is {}, not of the schema's type \"{t}\"", v.kind()))
        }
        _ => Ok(()),
    }
}

fn check_range(min: u64, max: Option<u64>, ptr: &str, min_key: &str, max_key: &str) -> Res<()> {
    if let Some(max) = max {
        if max < min {
            return err(
                &pointer_child(ptr, max_key),
                format!("\"{max_key}\" ({max}) is less than \"{min_key}\" ({min}): nothing matches"),
            );
        }
        if max - min > MAX_OPTIONAL_REPEAT {
            return err(
                &pointer_child(ptr, max_key),
                format!(
                    "\"{max_key}\" - \"{min_key}\" is {}; at most {MAX_OPTIONAL_REPEAT} optional copies are supported",
                    max - min
                ),
            );
        }
    }
    Ok(())
}

fn required_names(req: &Node, ptr: &str) -> Res<Vec<String>> {
    let Node::Arr(items) = req else {
        return err(ptr, format!("\"required\" must be an array of property names, not {}", req.kind()));
    };
    let mut names = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Node::Str(s) => names.push(s.clone()),
            other => {
                return err(
                    &pointer_child(ptr, &i.to_string()),
                    format!("a required property name must be a string, not {}", other.kind()),
                )
            }
        }
    }
    Ok(names)
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

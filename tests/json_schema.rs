//! JSON Schema → GBNF (src/grammar/json_schema.rs) against llama-cpp-python 0.3.36's converter
//! (tests/fixtures/json_schema/cases.json from scripts/make_json_schema_fixture.py: the grammar text
//! `llama_cpp.llama_grammar.json_schema_to_gbnf` writes for 38 hand-written and 100 random
//! schemas, which ours must equal character for character), the three schemas where that
//! converter's text is wrong (ours must be its text with the broken rules written correctly), and
//! the refusals: every keyword the conversion would not honour is an error naming it and its JSON
//! pointer.

// The module is self-contained (std, serde, serde_json), so the test compiles it on its own.
#[path = "../src/grammar/json_schema.rs"]
mod json_schema;

use json_schema::{json_schema_str_to_gbnf, json_schema_to_gbnf, SchemaError};
use serde_json::{json, Value};

/// llama-cpp-python's grammar with our one deliberate difference: the `char` rule of llama.cpp's
/// C++ converter, which keeps raw control characters out of strings (see the module's docs).
fn strict(gbnf: &str) -> String {
    let python =
        r#"char ::= [^"\\] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])"#;
    let cpp = r#"char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])"#;
    gbnf.split('\n').map(|l| if l == python { cpp } else { l }).collect::<Vec<_>>().join("\n")
}

fn fixture() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/json_schema/cases.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let v: Value = serde_json::from_str(&text).unwrap();
    v["cases"].as_array().unwrap().clone()
}

/// The lines of `a` and `b` that differ (as a set: rules are sorted by name, one per line).
fn has_line(g: &str, line: &str) -> bool {
    g.lines().any(|l| l == line)
}

fn diff(a: &str, b: &str) -> String {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut out = String::new();
    for l in la.iter().filter(|l| !lb.contains(l)) {
        out.push_str(&format!("  - {l}\n"));
    }
    for l in lb.iter().filter(|l| !la.contains(l)) {
        out.push_str(&format!("  + {l}\n"));
    }
    out
}

#[test]
fn grammars_equal_llama_cpp_pythons() {
    let cases = fixture();
    let mut failures = Vec::new();
    let mut n = 0;
    for case in cases.iter().filter(|c| c.get("llama_cpp_python").is_none()) {
        let name = case["name"].as_str().unwrap();
        let schema = case["schema"].as_str().unwrap();
        let want = strict(case["gbnf"].as_str().unwrap());
        let want = want.as_str();
        n += 1;
        match json_schema_str_to_gbnf(schema) {
            Ok(got) if got == want => {}
            Ok(got) => failures.push(format!("{name}: {schema}\n{}", diff(want, &got))),
            Err(e) => failures.push(format!("{name}: {schema}\n  error: {e}")),
        }
    }
    assert!(n >= 130, "only {n} cases in the fixture");
    assert!(
        failures.is_empty(),
        "{} of {n} differ from llama-cpp-python:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Where llama-cpp-python's grammar is wrong, ours is its grammar with exactly the broken rule
/// written correctly (each case's note in the fixture says what is broken):
/// - optional properties then `additionalProperties`: its `b-rest ::= additional-kvs` makes an
///   extra pair follow the last optional property, with no comma (llama.cpp then rejects
///   `{"a": "s"}` and `{"a": "s", "x": 2.5}` and accepts `{"a": "s" "x": 2.5}`);
/// - `"`, `\` and control characters in enum/const strings: its GBNF literal leaves JSON's
///   backslashes unescaped, so the grammar does not parse (`\"` ends the literal) or asks for a
///   raw newline (invalid JSON);
/// - characters beyond U+FFFF: it writes UTF-16 surrogates, code points no text has.
///
/// These languages are not equal to llama-cpp-python's by design (its are wrong); what is checked
/// is that nothing else differs.
#[test]
fn where_llama_cpp_python_is_wrong_only_the_broken_rule_differs() {
    let cases = fixture();
    let divergent: Vec<&Value> = cases.iter().filter(|c| c.get("llama_cpp_python").is_some()).collect();
    assert_eq!(divergent.len(), 3);
    for case in divergent {
        let name = case["name"].as_str().unwrap();
        let want = strict(case["gbnf"].as_str().unwrap());
        let want = want.as_str();
        let theirs = strict(case["llama_cpp_python"].as_str().unwrap());
        let theirs = theirs.as_str();
        let got = json_schema_str_to_gbnf(case["schema"].as_str().unwrap()).unwrap();
        assert_eq!(got, want, "{name}:\n{}", diff(want, &got));
        let changed = diff(theirs, &got);
        assert_eq!(changed.lines().count(), 2, "{name}: more than one rule differs:\n{changed}");
    }
    // The literals themselves, spelled out.
    let g = json_schema_to_gbnf(&json!({"const": "a\"b\\c\nd"})).unwrap();
    assert_eq!(g.lines().next().unwrap(), r##"root ::= "\"a\\\"b\\\\c\\nd\"""##);
    let g = json_schema_to_gbnf(&json!({"enum": ["é", "😀", "\u{7f}"]})).unwrap();
    assert_eq!(g.lines().next().unwrap(), r##"root ::= "\"\u00e9\"" | "\"\U0001f600\"" | "\"\u007f\"""##);
}

/// Numbers in `const`/`enum` are written as Python's json.dumps writes them (llama-cpp-python's
/// grammar makes the model write that text): integers with all their digits, floats as `repr`
/// (the shortest round-trip digits, the nearest of them on a tie, exponent from 1e16 and below
/// 1e-4). Checked against Python on 120,000 random doubles while writing this; a few here.
#[test]
fn numbers_as_python_writes_them() {
    let cases = [
        ("-0", "0"),
        ("-0.0", "-0.0"),
        ("0.0", "0.0"),
        ("1E2", "100.0"),
        ("0.1e1", "1.0"),
        ("2E-3", "0.002"),
        ("0.0001", "0.0001"),
        ("0.00001", "1e-05"),
        ("1e15", "1000000000000000.0"),
        ("1e16", "1e+16"),
        ("1.5e300", "1.5e+300"),
        ("5e-324", "5e-324"),
        ("1.7976931348623157e308", "1.7976931348623157e+308"),
        ("1760485316806258.25", "1760485316806258.2"),
        ("0.30000000000000004", "0.30000000000000004"),
        ("18446744073709551615", "18446744073709551615"),
        ("123456789012345678901234567890", "123456789012345678901234567890"),
        ("-9223372036854775809", "-9223372036854775809"),
    ];
    for (json, python) in cases {
        let g = json_schema_str_to_gbnf(&format!(r#"{{"const": {json}}}"#)).unwrap();
        assert_eq!(g.lines().next().unwrap(), format!(r#"root ::= "{python}""#), "{json}");
    }
}

/// The `serde_json::Value` entry point takes properties in the map's order (alphabetical here:
/// serde_json's `preserve_order` is off), the text one in the text's order.
#[test]
fn value_and_text_entry_points() {
    let schema = json!({
        "type": "object",
        "properties": {"b": {"type": "integer"}, "a": {"type": "string"}},
        "required": ["a"]
    });
    let from_value = json_schema_to_gbnf(&schema).unwrap();
    let sorted = r##"{"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a"]}"##;
    assert_eq!(from_value, json_schema_str_to_gbnf(sorted).unwrap());
    let text = r##"{"type": "object", "properties": {"b": {"type": "integer"}, "a": {"type": "string"}}, "required": ["a"]}"##;
    let from_text = json_schema_str_to_gbnf(text).unwrap();
    // `a` is required and `b` optional either way, but the object rule lists them by schema order.
    assert!(
        from_text.contains(r##"root ::= "{" space a-kv ( "," space ( b-kv ) )? "}" space"##),
        "{from_text}"
    );
    assert!(
        from_value.contains(r##"root ::= "{" space a-kv ( "," space ( b-kv ) )? "}" space"##),
        "{from_value}"
    );
    let all_optional = r##"{"properties": {"b": {"type": "integer"}, "a": {"type": "string"}}}"##;
    assert!(json_schema_str_to_gbnf(all_optional).unwrap().contains("(b-kv b-rest | a-kv )?"));
}

/// The quiz shape the tutor asks for: four choices exactly, the answer one of 0..=3.
#[test]
fn quiz_schema() {
    let schema = json!({
        "type": "object",
        "properties": {"questions": {"type": "array", "items": {
            "type": "object",
            "properties": {
                "question": {"type": "string"},
                "choices": {"type": "array", "items": {"type": "string"}, "minItems": 4, "maxItems": 4},
                "answer": {"type": "integer", "enum": [0, 1, 2, 3]}
            },
            "required": ["question", "choices", "answer"]
        }}},
        "required": ["questions"]
    });
    let g = json_schema_to_gbnf(&schema).unwrap();
    assert!(g.contains(
        r##"questions-item-choices ::= "[" space string "," space string "," space string "," space string "]" space"##
    ));
    assert!(g.contains(r##"questions-item-answer ::= "0" | "1" | "2" | "3""##));
    // A range written as minimum/maximum is refused (llama-cpp-python would drop it silently).
    let ranged =
        r##"{"type": "object", "properties": {"answer": {"type": "integer", "minimum": 0, "maximum": 3}}}"##;
    let e = json_schema_str_to_gbnf(ranged).unwrap_err();
    assert_eq!(e.pointer, "/properties/answer/minimum");
}

fn refusal(schema: &str) -> SchemaError {
    match json_schema_str_to_gbnf(schema) {
        Ok(g) => panic!("{schema} was converted:\n{g}"),
        Err(e) => e,
    }
}

#[test]
fn unsupported_keywords_are_refused_with_their_pointer() {
    // (schema, pointer, words the message must contain)
    let cases: &[(&str, &str, &[&str])] = &[
        (
            r##"{"type": "object", "properties": {"age": {"type": "string", "pattern": "^[0-9]+$"}}}"##,
            "/properties/age/pattern",
            &["unsupported", "\"pattern\""],
        ),
        (r##"{"type": "string", "format": "email"}"##, "/format", &["format \"email\""]),
        (r##"{"type": "integer", "minimum": 0}"##, "/minimum", &["\"minimum\""]),
        (r##"{"type": "number", "exclusiveMaximum": 1}"##, "/exclusiveMaximum", &["\"exclusiveMaximum\""]),
        (r##"{"type": "integer", "multipleOf": 2}"##, "/multipleOf", &["\"multipleOf\""]),
        (
            r##"{"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json#/x"}}}"##,
            "/properties/a/$ref",
            &["https://example.com/s.json#/x", "only references into this schema"],
        ),
        (r##"{"$ref": "other.json"}"##, "/$ref", &["other.json"]),
        (r##"{"$ref": "#"}"##, "/$ref", &["whole schema"]),
        (r##"{"$ref": "#/$defs/Missing", "$defs": {}}"##, "/$ref", &["does not resolve", "Missing"]),
        (r##"{"if": {"type": "string"}, "then": {"minLength": 1}}"##, "/if", &["\"if\""]),
        (
            r##"{"type": "object", "patternProperties": {"^x": {"type": "string"}}}"##,
            "/patternProperties",
            &["\"patternProperties\""],
        ),
        (r##"{"allOf": [{"type": "object"}]}"##, "/allOf", &["\"allOf\""]),
        (r##"{"not": {"type": "null"}}"##, "/not", &["\"not\""]),
        (r##"{"type": "array", "prefixItems": [{"type": "string"}]}"##, "/prefixItems", &["\"prefixItems\""]),
        (r##"{"type": "array", "items": [{"type": "string"}]}"##, "/items", &["tuple"]),
        (
            r##"{"properties": {"tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true}}}"##,
            "/properties/tags/uniqueItems",
            &["\"uniqueItems\""],
        ),
        (r##"{"type": "array", "contains": {"type": "string"}}"##, "/contains", &["\"contains\""]),
        (
            r##"{"type": "object", "propertyNames": {"maxLength": 3}}"##,
            "/propertyNames",
            &["\"propertyNames\""],
        ),
        (r##"{"type": "object", "minProperties": 1}"##, "/minProperties", &["\"minProperties\""]),
        (
            r##"{"type": "object", "dependentRequired": {"a": ["b"]}}"##,
            "/dependentRequired",
            &["\"dependentRequired\""],
        ),
        (r##"{"type": "string", "nullable": true}"##, "/nullable", &["\"nullable\""]),
        (
            r##"{"type": "object", "unevaluatedProperties": false}"##,
            "/unevaluatedProperties",
            &["unevaluatedProperties"],
        ),
        (r##"{"type": "string", "contentEncoding": "base64"}"##, "/contentEncoding", &["contentEncoding"]),
        // supported keywords where they would not be honoured
        (r##"{"type": "array", "minItems": 2}"##, "/minItems", &["\"minItems\"", "only with \"items\""]),
        (r##"{"minLength": 2}"##, "/minLength", &["\"minLength\"", "\"type\": \"string\""]),
        (r##"{"type": "string", "format": "date", "maxLength": 3}"##, "/maxLength", &["\"maxLength\""]),
        (
            r##"{"$ref": "#/$defs/A", "type": "object", "$defs": {"A": {"type": "object"}}}"##,
            "/type",
            &["\"type\"", "\"$ref\""],
        ),
        (
            r##"{"type": "object", "properties": {"a": {"type": "string"}}, "anyOf": [{"required": ["a"]}]}"##,
            "/type",
            &["\"anyOf\""],
        ),
        (r##"{"anyOf": [{"type": "string"}], "oneOf": [{"type": "null"}]}"##, "/anyOf", &["\"oneOf\""]),
        (r##"{"type": ["string", "null"], "maxLength": 3}"##, "/maxLength", &["list of types"]),
        (r##"{"type": "string", "enum": ["a", 1]}"##, "/enum/1", &["\"string\""]),
        (r##"{"type": "string", "enum": ["a"], "maxLength": 3}"##, "/maxLength", &["\"enum\""]),
        (r##"{"const": 1, "enum": [2, 3]}"##, "/enum", &["\"const\""]),
        (r##"{"type": "boolean", "const": "yes"}"##, "/const", &["\"boolean\""]),
        (r##"{"type": "integer", "format": "int32"}"##, "/format", &["\"format\"", "strings"]),
        (r##"{"type": "object", "items": {"type": "string"}}"##, "/items", &["\"items\"", "arrays"]),
        (r##"{"type": "object", "required": ["a"]}"##, "/required", &["\"a\"", "\"properties\""]),
        (
            r##"{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "b"]}"##,
            "/required/1",
            &["\"b\""],
        ),
        // malformed schemas
        (r##"{"type": "str"}"##, "/type", &["unknown type \"str\""]),
        (r##"{"type": []}"##, "/type", &["empty"]),
        (r##"{"type": "object", "properties": {"a": true}}"##, "/properties/a", &["boolean schemas"]),
        (r##"{"type": "object", "properties": {"a": 5}}"##, "/properties/a", &["must be a JSON object"]),
        (r##"{"enum": []}"##, "/enum", &["empty"]),
        (r##"{"anyOf": []}"##, "/anyOf", &["empty"]),
        (
            r##"{"type": "array", "items": {"type": "string"}, "minItems": 3, "maxItems": 2}"##,
            "/maxItems",
            &["less than"],
        ),
        (
            r##"{"type": "array", "items": {"type": "string"}, "minItems": -1}"##,
            "/minItems",
            &["non-negative integer"],
        ),
        (r##"{"type": "string", "maxLength": 1.5}"##, "/maxLength", &["non-negative integer"]),
        (r##"{"type": "string", "maxLength": 100000}"##, "/maxLength", &["at most 1000"]),
        (
            r##"{"type": "array", "items": {"type": "null"}, "minItems": 1000000}"##,
            "/minItems",
            &["at most 10000"],
        ),
        (r##"{"enum": [1, [2, 1e400]]}"##, "/enum/1", &["Infinity"]),
        (r##"{"const": "\ud800"}"##, "", &["surrogate"]),
        (
            r##"{"type": "object", "additionalProperties": 1}"##,
            "/additionalProperties",
            &["boolean or a schema"],
        ),
        (r##"{"type": "object", "properties": {"a": {"$id": "x"}}}"##, "/properties/a/$id", &["\"$id\""]),
        (r##"{"properties": {"": {"type": "string"}}}"##, "/properties/", &["empty property name"]),
        (
            r##"{"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {"A": {"anyOf": [{"$ref": "#/$defs/A"}, {"type": "null"}]}}}"##,
            "/$defs/A/anyOf/0/$ref",
            &["left recursion"],
        ),
        (
            r##"{"$ref": "#/$defs/A", "$defs": {"A": {"$ref": "#/$defs/A"}}}"##,
            "/$defs/A/$ref",
            &["refers back to itself"],
        ),
        (r##"[]"##, "", &["must be a JSON object"]),
        (r##"true"##, "", &["boolean schemas"]),
        (r##"{"type": "object""##, "", &["not valid JSON"]),
        (r##""##, "", &["not valid JSON"]),
    ];
    let mut failures = Vec::new();
    for (schema, pointer, words) in cases {
        let e = refusal(schema);
        let shown = e.to_string();
        if e.pointer != *pointer || !words.iter().all(|w| e.message.contains(w)) {
            failures.push(format!(
                "{schema}\n  got {:?}: {}\n  want {pointer:?} with {words:?}",
                e.pointer, e.message
            ));
        }
        if !pointer.is_empty() && !shown.contains(pointer) {
            failures.push(format!("{schema}: the message does not show the pointer: {shown}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn error_message_names_keyword_and_place() {
    let e = refusal(r##"{"type": "object", "properties": {"age": {"type": "integer", "pattern": "x"}}}"##);
    let s = e.to_string();
    assert!(s.starts_with("JSON schema: unsupported JSON Schema keyword \"pattern\""), "{s}");
    assert!(s.ends_with("(at /properties/age/pattern)"), "{s}");
    // A pointer escapes "/" and "~" in keys (RFC 6901).
    let e = refusal(r##"{"properties": {"a/b~c": {"type": "string", "pattern": "x"}}}"##);
    assert_eq!(e.pointer, "/properties/a~1b~0c/pattern");
    // Errors inside a referenced definition point into the definition.
    let e = refusal(
        r##"{"properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {"A": {"type": "string", "pattern": "x"}}}"##,
    );
    assert_eq!(e.pointer, "/$defs/A/pattern");
}

/// Accepted without changing the grammar: annotations, `$id` at the root, `$defs` anywhere.
#[test]
fn annotations_are_ignored() {
    let plain =
        json_schema_str_to_gbnf(r##"{"type": "object", "properties": {"a": {"type": "string"}}}"##).unwrap();
    let annotated = json_schema_str_to_gbnf(
        r##"{"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "https://x/y", "title": "T",
            "description": "d", "$comment": "c", "examples": [{"a": "x"}], "default": {},
            "type": "object", "properties": {"a": {"type": "string", "title": "A", "default": "z",
            "deprecated": false, "readOnly": true, "writeOnly": false}}, "$defs": {"Unused": {"pattern": "x"}}}"##,
    )
    .unwrap();
    assert_eq!(plain, annotated);
    // A schema of annotations only is `{}`: any object, as llama.cpp's `{}`.
    assert_eq!(
        json_schema_str_to_gbnf(r##"{"description": "anything"}"##).unwrap(),
        json_schema_str_to_gbnf("{}").unwrap()
    );
}

/// References: other places than `$defs`, JSON-pointer escapes, arrays by index, recursion.
#[test]
fn references() {
    let g = json_schema_str_to_gbnf(
        r##"{"properties": {"a": {"$ref": "#/properties/b"}, "b": {"type": "integer"}, "c": {"$ref": "#/$defs/x~1y"},
            "d": {"$ref": "#/$defs/list/1"}, "e": {"$ref": "#/$defs/sp%20ace"}},
            "$defs": {"x/y": {"type": "boolean"}, "list": [{"type": "null"}, {"const": "second"}], "sp ace": {"type": "null"}}}"##,
    )
    .unwrap();
    for line in [
        r##"a-kv ::= "\"a\"" space ":" space a"##,
        "a ::= integer",
        "c ::= boolean",
        r##"1 ::= "\"second\"""##,
        "d ::= 1",
        "e ::= null",
    ] {
        assert!(has_line(&g, line), "no {line:?} in\n{g}");
    }
    // Recursion through an array (the `[` is consumed first, so it is not left recursion).
    let g = json_schema_str_to_gbnf(
        r##"{"$defs": {"T": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/T"}}}}},
            "type": "object", "properties": {"t": {"$ref": "#/$defs/T"}}, "required": ["t"]}"##,
    )
    .unwrap();
    assert!(has_line(&g, "T-kids-item ::= T"), "{g}");
    assert!(has_line(&g, r##"T ::= "{" space  (T-kids-kv )? "}" space"##), "{g}");
}

/// Odd, huge and hostile inputs give a grammar or an error, never a panic or a runaway.
#[test]
fn no_panic_on_odd_inputs() {
    let mut inputs: Vec<String> = vec![
        "null".into(),
        "0".into(),
        "\"x\"".into(),
        "{}{}".into(),
        r##"{"type": null}"##.into(),
        r##"{"properties": null}"##.into(),
        r##"{"properties": {"a": {}}, "required": "a"}"##.into(),
        r##"{"required": [1]}"##.into(),
        r##"{"enum": 3}"##.into(),
        r##"{"anyOf": {}}"##.into(),
        r##"{"$ref": 5}"##.into(),
        r##"{"$ref": "#/"}"##.into(),
        r##"{"$ref": "#//"}"##.into(),
        r##"{"$ref": "#/$defs/%zz", "$defs": {"%zz": {}}}"##.into(),
        r##"{"$ref": "#/a/99999999999999999999", "a": []}"##.into(),
        r##"{"format": 3}"##.into(),
        r##"{"items": false}"##.into(),
        r##"{"additionalProperties": {"additionalProperties": {"additionalProperties": false}}}"##.into(),
        r##"{"enum": [1e308, -1e-308, 5e-324, 18446744073709551615, -9223372036854775808, 123456789012345678901234567890]}"##
            .into(),
        r##"{"type": "string", "minLength": 10000}"##.into(),
        r##"{"type": "array", "items": {}, "maxItems": 18446744073709551615}"##.into(),
        "[".repeat(100_000),
        format!("{}{}", "{\"items\": ".repeat(5_000), "}".repeat(5_000)),
    ];
    // A chain of 400 definitions, each an array of the next: deeper than the converter goes.
    let mut defs = Vec::new();
    for i in 0..400 {
        defs.push(format!(r##""D{i}": {{"type": "array", "items": {{"$ref": "#/$defs/D{}"}}}}"##, i + 1));
    }
    defs.push(r##""D400": {"type": "null"}"##.into());
    inputs.push(format!(r##"{{"$ref": "#/$defs/D0", "$defs": {{{}}}}}"##, defs.join(", ")));
    // Many optional properties (the object rule is linear in them).
    let props: Vec<String> = (0..3000).map(|i| format!(r##""p{i}": {{"type": "integer"}}"##)).collect();
    inputs.push(format!(r##"{{"properties": {{{}}}}}"##, props.join(", ")));
    for input in &inputs {
        let t = std::time::Instant::now();
        let r = std::panic::catch_unwind(|| json_schema_str_to_gbnf(input));
        let shown: String = input.chars().take(80).collect();
        assert!(r.is_ok(), "panicked on {shown}");
        assert!(t.elapsed().as_secs() < 10, "took {:?} on {shown}", t.elapsed());
    }
    let chain = json_schema_str_to_gbnf(inputs[inputs.len() - 2].as_str()).unwrap_err();
    assert!(chain.message.contains("deeper than"), "{chain}");
    // The deepest inputs fit in a small stack (wasm's is 1 MiB, shared with the caller's frames):
    // measured under 192 KiB in release.
    let deepest =
        [inputs[inputs.len() - 2].clone(), format!("{}{{}}{}", "{\"items\": ".repeat(127), "}".repeat(127))];
    let small = std::thread::Builder::new().stack_size(512 * 1024);
    let run = move || {
        for s in &deepest {
            let _ = json_schema_str_to_gbnf(s);
        }
    };
    small.spawn(run).unwrap().join().unwrap();
    let many = json_schema_str_to_gbnf(inputs[inputs.len() - 1].as_str()).unwrap();
    assert!(many.contains("p2998-rest ::= ( \",\" space p2999-kv )?"));
}

/// Deterministic mutations of the fixture's schemas (keys dropped, values swapped for others)
/// never panic.
#[test]
fn mutated_schemas_never_panic() {
    let cases = fixture();
    let odd = [
        json!(null),
        json!(true),
        json!(-1),
        json!(2.5),
        json!("x"),
        json!([]),
        json!({}),
        json!([{}]),
        json!({"$ref": "#"}),
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    fn size(v: &Value) -> usize {
        1 + match v {
            Value::Object(m) => m.values().map(size).sum(),
            Value::Array(a) => a.iter().map(size).sum(),
            _ => 0,
        }
    }
    /// The `n`th node in pre-order.
    fn nth(v: &mut Value, mut n: usize) -> Option<&mut Value> {
        if n == 0 {
            return Some(v);
        }
        n -= 1;
        let children: Vec<&mut Value> = match v {
            Value::Object(m) => m.values_mut().collect(),
            Value::Array(a) => a.iter_mut().collect(),
            _ => Vec::new(),
        };
        for c in children {
            let k = size(c);
            if n < k {
                return nth(c, n);
            }
            n -= k;
        }
        None
    }
    let mut converted = 0;
    for round in 0..6 {
        for case in &cases {
            let mut schema: Value = serde_json::from_str(case["schema"].as_str().unwrap()).unwrap();
            for _ in 0..=(round % 3) {
                let pick = (next() % size(&schema) as u64) as usize;
                let (coin, which) = (next(), next());
                let target = nth(&mut schema, pick).unwrap();
                match target {
                    Value::Object(m) if !m.is_empty() && coin % 2 == 0 => {
                        let k = m.keys().nth((which % m.len() as u64) as usize).unwrap().clone();
                        m.remove(&k);
                    }
                    _ => *target = odd[(which % odd.len() as u64) as usize].clone(),
                }
            }
            let r = std::panic::catch_unwind(|| json_schema_to_gbnf(&schema));
            match r {
                Ok(Ok(_)) => converted += 1,
                Ok(Err(e)) => assert!(!e.message.is_empty()),
                Err(_) => panic!("panicked on {schema}"),
            }
        }
    }
    assert!(converted > 0);
}

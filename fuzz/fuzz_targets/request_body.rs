//! Fuzzes the lazy OpenAI request-body parser: any input is refused with a `BodyError` or
//! parsed; a parsed body's model rewrite yields JSON that parses again, to the new model, with
//! the same `stream` flag and prompt kind.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pointsman_extproc::body::{Api, parse_request};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let api = match selector % 5 {
        0 => Api::Completions,
        1 => Api::ChatCompletions,
        2 => Api::Responses,
        3 => Api::Conversations,
        _ => Api::Embeddings,
    };
    let Ok(parsed) = parse_request(body, api) else {
        return;
    };
    assert!(parsed.model_span.end <= body.len());
    let target = format!("{}-rewritten\"\\", parsed.model);
    let out = parsed
        .rewrite_model(body, &target)
        .expect("a different model is rewritten");
    let again = parse_request(&out, api).expect("a rewritten body parses");
    assert_eq!(again.model, target);
    assert_eq!(again.stream, parsed.stream);
    assert_eq!(
        std::mem::discriminant(&again.prompt),
        std::mem::discriminant(&parsed.prompt)
    );
});

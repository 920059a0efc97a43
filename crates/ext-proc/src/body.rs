//! Lazy parsing of OpenAI-style request bodies: only what scheduling needs.
//!
//! [`parse_request`] reads `model`, the prompt (`messages`, `prompt`, `input` or `items`
//! depending on the [`Api`]), `stream` and `cache_salt`, and skips every other field without
//! building it. Strings without escapes are borrowed from the body. The byte range of the
//! `model` value is kept so that a model rewrite splices one string into the body
//! ([`ParsedBody::rewrite_model`]) instead of re-serialising it.
//!
//! Validation follows the reference's `openai-parser` (`epp-reference.md` §2.6):
//!
//! | API (by `:path` suffix) | required |
//! | --- | --- |
//! | `/conversations` | non-empty `items` |
//! | `/responses` | `input` |
//! | `/chat/completions` | at least one message |
//! | `/completions` (the default) | non-empty `prompt`: string, strings or token ids |
//! | `/embeddings` | non-empty `input` |
//!
//! # Differs from the reference
//! - The body is not re-marshalled with sorted keys; only the `model` value changes, and only
//!   when the model is rewritten.
//! - Array content parts (`[{"type":"text","text":…}]`) are joined into one string per message.

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use pointsman::{ChatMessage, Prompt};

/// The OpenAI API a request is addressed to, chosen by the suffix of its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/v1/completions`, also the default for unknown paths.
    Completions,
    /// `/v1/chat/completions`.
    ChatCompletions,
    /// `/v1/responses`.
    Responses,
    /// `/v1/conversations`.
    Conversations,
    /// `/v1/embeddings`.
    Embeddings,
}

impl Api {
    /// The API for `path` (its query string ignored), in the reference's suffix order.
    ///
    /// ```
    /// use pointsman_extproc::body::Api;
    /// assert_eq!(Api::from_path("/v1/chat/completions?x=1"), Api::ChatCompletions);
    /// assert_eq!(Api::from_path("/v1/completions"), Api::Completions);
    /// assert_eq!(Api::from_path("/anything"), Api::Completions);
    /// ```
    pub fn from_path(path: &str) -> Api {
        let path = path.split(['?', '#']).next().unwrap_or(path);
        let path = path.trim_end_matches('/');
        if path.ends_with("/conversations") {
            Api::Conversations
        } else if path.ends_with("/responses") {
            Api::Responses
        } else if path.ends_with("/chat/completions") {
            Api::ChatCompletions
        } else if path.ends_with("/embeddings") {
            Api::Embeddings
        } else {
            Api::Completions
        }
    }
}

/// Why a body was refused; every variant is answered with 400 `BadRequest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// Not UTF-8 or not JSON, or a known field of the wrong type.
    #[error("invalid request body: {0}")]
    Invalid(String),
    /// `model` absent or not a string.
    #[error("model not found in request body")]
    MissingModel,
    /// The API's prompt field is missing or empty.
    #[error("{0}")]
    MissingPrompt(&'static str),
}

/// The prompt as scheduling sees it, owning what could not be borrowed.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum PromptData<'a> {
    /// No prompt (e.g. a body-less request).
    #[default]
    None,
    /// One string.
    Text(Cow<'a, str>),
    /// Chat messages.
    Chat(Vec<ChatMessage<'a>>),
    /// Token ids.
    Tokens(Vec<u32>),
}

impl PromptData<'_> {
    /// Borrows as the core's [`Prompt`].
    pub fn as_prompt(&self) -> Prompt<'_> {
        match self {
            PromptData::None => Prompt::None,
            PromptData::Text(s) => Prompt::Text(s),
            PromptData::Chat(m) => Prompt::Chat(m),
            PromptData::Tokens(t) => Prompt::TokenIds(t),
        }
    }
}

/// What scheduling needs from a request body.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedBody<'a> {
    /// The API the body was validated for.
    pub api: Api,
    /// `model`.
    pub model: Cow<'a, str>,
    /// Byte range of the `model` value (with its quotes) in the body.
    pub model_span: Range<usize>,
    /// `stream: true`.
    pub stream: bool,
    /// `cache_salt`, if a string.
    pub cache_salt: Option<Cow<'a, str>>,
    /// The prompt.
    pub prompt: PromptData<'a>,
}

impl ParsedBody<'_> {
    /// `body` with the `model` value replaced by `target`, or `None` when `target` is the
    /// model already there (nothing to rewrite).
    pub fn rewrite_model(&self, body: &[u8], target: &str) -> Option<Vec<u8>> {
        if target == self.model {
            return None;
        }
        let quoted = serde_json::to_string(target).ok()?;
        let head = body.get(..self.model_span.start)?;
        let tail = body.get(self.model_span.end..)?;
        let mut out = Vec::with_capacity(head.len() + quoted.len() + tail.len());
        out.extend_from_slice(head);
        out.extend_from_slice(quoted.as_bytes());
        out.extend_from_slice(tail);
        Some(out)
    }
}

/// Parses and validates `body` for `api`.
///
/// ```
/// use pointsman_extproc::body::{parse_request, Api};
/// let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"n":1}"#;
/// let parsed = parse_request(body, Api::ChatCompletions)?;
/// assert_eq!(parsed.model, "m");
/// assert!(parsed.stream);
/// let rewritten = parsed.rewrite_model(body, "m2").unwrap();
/// assert!(rewritten.starts_with(br#"{"model":"m2","messages""#));
/// # Ok::<(), pointsman_extproc::body::BodyError>(())
/// ```
///
/// # Errors
/// A [`BodyError`] for invalid JSON, a missing or non-string `model`, or a missing prompt.
pub fn parse_request(body: &[u8], api: Api) -> Result<ParsedBody<'_>, BodyError> {
    let text =
        std::str::from_utf8(body).map_err(|e| BodyError::Invalid(format!("not UTF-8: {e}")))?;
    let raw: RawBody<'_> =
        serde_json::from_str(text).map_err(|e| BodyError::Invalid(e.to_string()))?;
    let model_raw = raw.model.ok_or(BodyError::MissingModel)?;
    let start = (model_raw.get().as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
    let model_span = start..start + model_raw.get().len();
    let model: Cow<'_, str> = match serde_json::from_str::<&str>(model_raw.get()) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(
            serde_json::from_str::<String>(model_raw.get()).map_err(|_| BodyError::MissingModel)?,
        ),
    };
    if body.get(model_span.clone()).is_none() {
        return Err(BodyError::Invalid("model value out of range".into()));
    }
    let prompt = match api {
        Api::ChatCompletions => {
            let msgs = messages(raw.messages);
            if msgs.is_empty() {
                return Err(BodyError::MissingPrompt(
                    "chat completions request must have at least one message",
                ));
            }
            PromptData::Chat(msgs)
        }
        Api::Completions => text_prompt(raw.prompt).ok_or(BodyError::MissingPrompt(
            "prompt is required and must not be empty",
        ))?,
        Api::Embeddings => text_prompt(raw.input).ok_or(BodyError::MissingPrompt(
            "input is required and must not be empty",
        ))?,
        Api::Responses => match raw.input {
            Some(Lazy::Str(s)) => PromptData::Text(s),
            Some(list @ Lazy::List(_)) => {
                let msgs = messages(Some(list));
                if msgs.is_empty() {
                    PromptData::None
                } else {
                    PromptData::Chat(msgs)
                }
            }
            Some(Lazy::Null) | None => {
                return Err(BodyError::MissingPrompt("input is required"));
            }
            Some(_) => PromptData::None,
        },
        Api::Conversations => {
            let msgs = messages(raw.items);
            if msgs.is_empty() {
                return Err(BodyError::MissingPrompt(
                    "conversations request must have at least one item",
                ));
            }
            PromptData::Chat(msgs)
        }
    };
    let cache_salt = match raw.cache_salt {
        Some(Lazy::Str(s)) => Some(s),
        _ => None,
    };
    Ok(ParsedBody {
        api,
        model,
        model_span,
        stream: matches!(raw.stream, Some(Lazy::Bool(true))),
        cache_salt,
        prompt,
    })
}

fn messages(value: Option<Lazy<'_>>) -> Vec<ChatMessage<'_>> {
    let Some(Lazy::List(items)) = value else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| match item {
            Lazy::Obj(obj) => {
                let obj = *obj;
                let content = match obj.content {
                    Some(c) => flatten(c),
                    None => obj.text.unwrap_or_default(),
                };
                Some(ChatMessage::new(obj.role.unwrap_or_default(), content))
            }
            Lazy::Str(s) => Some(ChatMessage::new("user", s)),
            _ => None,
        })
        .collect()
}

/// Joins text parts: a string stays borrowed, a list of parts is concatenated.
fn flatten(value: Lazy<'_>) -> Cow<'_, str> {
    match value {
        Lazy::Str(s) => s,
        Lazy::List(parts) => {
            let mut out = String::new();
            for part in parts {
                match part {
                    Lazy::Str(s) => out.push_str(&s),
                    Lazy::Obj(obj) => {
                        if let Some(t) = obj.text {
                            out.push_str(&t);
                        } else if let Some(c) = obj.content {
                            out.push_str(&flatten(c));
                        }
                    }
                    _ => {}
                }
            }
            Cow::Owned(out)
        }
        _ => Cow::Borrowed(""),
    }
}

fn text_prompt(value: Option<Lazy<'_>>) -> Option<PromptData<'_>> {
    match value? {
        Lazy::Str(s) if !s.is_empty() => Some(PromptData::Text(s)),
        Lazy::List(items) if !items.is_empty() => {
            let mut tokens = Vec::new();
            let mut texts: Vec<Cow<'_, str>> = Vec::new();
            for item in items {
                match item {
                    Lazy::Num(n) => tokens.push(n),
                    Lazy::Str(s) => texts.push(s),
                    Lazy::List(inner) => tokens.extend(inner.into_iter().filter_map(|v| match v {
                        Lazy::Num(n) => Some(n),
                        _ => None,
                    })),
                    _ => {}
                }
            }
            if !texts.is_empty() {
                if texts.len() == 1 {
                    texts.pop().map(PromptData::Text)
                } else {
                    Some(PromptData::Text(Cow::Owned(texts.concat())))
                }
            } else if !tokens.is_empty() {
                Some(PromptData::Tokens(tokens))
            } else {
                None
            }
        }
        _ => None,
    }
}

#[derive(Deserialize)]
struct RawBody<'a> {
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(borrow, default)]
    messages: Option<Lazy<'a>>,
    #[serde(borrow, default)]
    prompt: Option<Lazy<'a>>,
    #[serde(borrow, default)]
    input: Option<Lazy<'a>>,
    #[serde(borrow, default)]
    items: Option<Lazy<'a>>,
    #[serde(borrow, default)]
    stream: Option<Lazy<'a>>,
    #[serde(borrow, default)]
    cache_salt: Option<Lazy<'a>>,
}

/// A JSON value keeping only what prompts are made of.
#[derive(Debug)]
enum Lazy<'a> {
    Null,
    Bool(bool),
    Num(u32),
    Str(Cow<'a, str>),
    List(Vec<Lazy<'a>>),
    Obj(Box<Obj<'a>>),
    Other,
}

#[derive(Debug, Default)]
struct Obj<'a> {
    role: Option<Cow<'a, str>>,
    content: Option<Lazy<'a>>,
    text: Option<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Lazy<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LazyVisitor(std::marker::PhantomData))
    }
}

struct LazyVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for LazyVisitor<'a> {
    type Value = Lazy<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Lazy::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Lazy::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Lazy::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(u32::try_from(v).map_or(Lazy::Other, Lazy::Num))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(u32::try_from(v).map_or(Lazy::Other, Lazy::Num))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Lazy::Other)
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Lazy::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Lazy::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Lazy::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element::<Lazy<'a>>()? {
            out.push(v);
        }
        Ok(Lazy::List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut obj = Obj::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match &*key {
                "role" => obj.role = str_of(map.next_value::<Lazy<'a>>()?),
                "text" => obj.text = str_of(map.next_value::<Lazy<'a>>()?),
                "content" => obj.content = Some(map.next_value::<Lazy<'a>>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Lazy::Obj(Box::new(obj)))
    }
}

fn str_of(v: Lazy<'_>) -> Option<Cow<'_, str>> {
    match v {
        Lazy::Str(s) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_by_suffix() {
        for (path, api) in [
            ("/v1/chat/completions", Api::ChatCompletions),
            ("/v1/completions", Api::Completions),
            ("/v1/responses", Api::Responses),
            ("/v1/conversations", Api::Conversations),
            ("/v1/embeddings", Api::Embeddings),
            ("/", Api::Completions),
        ] {
            assert_eq!(Api::from_path(path), api, "{path}");
        }
    }

    #[test]
    fn chat_with_parts_and_escapes() {
        let body = br#"{"messages":[{"role":"system","content":"be \"nice\""},{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"b"}]}],"model":"m\u00e9","cache_salt":"s"}"#;
        let p = parse_request(body, Api::ChatCompletions).unwrap();
        assert_eq!(p.model, "mé");
        assert_eq!(p.cache_salt.as_deref(), Some("s"));
        let PromptData::Chat(m) = &p.prompt else {
            panic!("{:?}", p.prompt)
        };
        assert_eq!(m[0].content, "be \"nice\"");
        assert_eq!(m[1].content, "ab");
        assert!(!p.stream);
        let out = p.rewrite_model(body, "x").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], "x");
        assert_eq!(v["cache_salt"], "s");
    }

    #[test]
    fn completions_prompt_forms() {
        let cases: [(&[u8], PromptData<'_>); 4] = [
            (
                br#"{"model":"m","prompt":"hi"}"#,
                PromptData::Text("hi".into()),
            ),
            (
                br#"{"model":"m","prompt":["a","b"]}"#,
                PromptData::Text("ab".into()),
            ),
            (
                br#"{"model":"m","prompt":[1,2,3]}"#,
                PromptData::Tokens(vec![1, 2, 3]),
            ),
            (
                br#"{"model":"m","prompt":[[1],[2]]}"#,
                PromptData::Tokens(vec![1, 2]),
            ),
        ];
        for (body, want) in cases {
            assert_eq!(parse_request(body, Api::Completions).unwrap().prompt, want);
        }
    }

    #[test]
    fn errors() {
        let cases: [(&[u8], Api, &str); 9] = [
            (b"not json", Api::Completions, "invalid request body"),
            (b"\xff\xfe", Api::Completions, "not UTF-8"),
            (br#"{"prompt":"x"}"#, Api::Completions, "model not found"),
            (
                br#"{"model":3,"prompt":"x"}"#,
                Api::Completions,
                "model not found",
            ),
            (
                br#"{"model":"m","prompt":""}"#,
                Api::Completions,
                "prompt is required",
            ),
            (
                br#"{"model":"m","messages":[]}"#,
                Api::ChatCompletions,
                "at least one",
            ),
            (br#"{"model":"m"}"#, Api::Embeddings, "input is required"),
            (br#"{"model":"m"}"#, Api::Responses, "input is required"),
            (
                br#"{"model":"m","items":[]}"#,
                Api::Conversations,
                "at least one item",
            ),
        ];
        for (body, api, want) in cases {
            let e = parse_request(body, api).unwrap_err().to_string();
            assert!(e.contains(want), "{e} !~ {want}");
        }
    }

    #[test]
    fn responses_and_stream() {
        let body = br#"{"model":"m","input":[{"role":"user","content":"q"}],"stream":true}"#;
        let p = parse_request(body, Api::Responses).unwrap();
        assert!(p.stream);
        assert!(matches!(p.prompt, PromptData::Chat(ref m) if m[0].content == "q"));
        assert!(p.rewrite_model(body, "m").is_none());
    }
}

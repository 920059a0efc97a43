//! The request being scheduled, borrowed from whatever parsed it.
//!
//! A [`Request`] borrows its strings so that a gateway can schedule straight from the parsed body
//! without copying the prompt. Build one with [`Request::new`] and the `with_*` methods.

use std::borrow::Cow;

/// One chat message: a role and its content.
///
/// Structured content (an array of parts with images or audio) is passed as its JSON text: the
/// prefix index only needs a deterministic byte sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage<'a> {
    /// `system`, `user`, `assistant`, `tool`, …
    pub role: Cow<'a, str>,
    /// The message text, or the JSON text of a content-part array.
    pub content: Cow<'a, str>,
}

impl<'a> ChatMessage<'a> {
    /// A message with `role` and `content`.
    pub fn new(role: impl Into<Cow<'a, str>>, content: impl Into<Cow<'a, str>>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// What the model is asked to continue: the input to prefix-cache affinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Prompt<'a> {
    /// No prompt (a body-less request, or a parser that does not look inside the body).
    #[default]
    None,
    /// A completion prompt. For a prompt given as an array of strings, pass them joined with a
    /// single space, as the reference does.
    Text(&'a str),
    /// Chat messages, in order.
    Chat(&'a [ChatMessage<'a>]),
    /// Token ids (a pre-tokenised prompt): the prefix index then works in token blocks.
    TokenIds(&'a [u32]),
    /// Any other deterministic serialisation of the input (for example the JSON of a Responses
    /// API `input`, or of embeddings `input`).
    Bytes(&'a [u8]),
}

impl Prompt<'_> {
    /// An estimate of the prompt's length in characters (token ids count as 4 characters each).
    pub fn approx_chars(&self) -> usize {
        match self {
            Prompt::None => 0,
            Prompt::Text(s) => s.len(),
            Prompt::Chat(ms) => ms.iter().map(|m| m.role.len() + m.content.len()).sum(),
            Prompt::TokenIds(t) => t.len() * 4,
            Prompt::Bytes(b) => b.len(),
        }
    }
}

/// Request headers as `(name, value)` pairs; names match case-insensitively.
#[derive(Debug, Clone, Copy, Default)]
pub struct Headers<'a>(pub &'a [(&'a str, &'a str)]);

impl<'a> Headers<'a> {
    /// The first value of header `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// A request to schedule.
///
/// ```
/// use pointsman::{ChatMessage, Prompt, Request};
/// let messages = [ChatMessage::new("user", "Hello")];
/// let req = Request::new("req-1", "llama-3-8b")
///     .with_prompt(Prompt::Chat(&messages))
///     .with_priority(-1);
/// assert!(req.is_sheddable());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The request id (`x-request-id`).
    pub id: &'a str,
    /// The model after any rewrite: the model or LoRA adapter the server must run.
    pub target_model: &'a str,
    /// The prompt.
    pub prompt: Prompt<'a>,
    /// The request headers.
    pub headers: Headers<'a>,
    /// The priority from the request's InferenceObjective; below 0 means sheddable.
    pub priority: i32,
    /// The `cache_salt` of the body: requests with different salts never share prefix blocks.
    pub cache_salt: Option<&'a str>,
    /// The size of the request body in bytes, when known (for token estimates).
    pub body_bytes: Option<usize>,
    /// The gateway's subset hint: only endpoints whose address is in this list are candidates
    /// (entries may be `ip` or `ip:port`; the port is ignored). `None` means every endpoint;
    /// `Some(&[])` means none.
    pub subset_hint: Option<&'a [&'a str]>,
}

impl<'a> Request<'a> {
    /// A request with id `id` for model `target_model`, no prompt, priority 0.
    pub fn new(id: &'a str, target_model: &'a str) -> Self {
        Request {
            id,
            target_model,
            prompt: Prompt::None,
            headers: Headers::default(),
            priority: 0,
            cache_salt: None,
            body_bytes: None,
            subset_hint: None,
        }
    }

    /// Sets the prompt.
    pub fn with_prompt(mut self, prompt: Prompt<'a>) -> Self {
        self.prompt = prompt;
        self
    }

    /// Sets the priority.
    pub fn with_priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the headers.
    pub fn with_headers(mut self, headers: &'a [(&'a str, &'a str)]) -> Self {
        self.headers = Headers(headers);
        self
    }

    /// Sets the cache salt.
    pub fn with_cache_salt(mut self, salt: &'a str) -> Self {
        self.cache_salt = Some(salt);
        self
    }

    /// Sets the body size.
    pub fn with_body_bytes(mut self, n: usize) -> Self {
        self.body_bytes = Some(n);
        self
    }

    /// Sets the subset hint.
    pub fn with_subset_hint(mut self, hint: &'a [&'a str]) -> Self {
        self.subset_hint = Some(hint);
        self
    }

    /// Whether the request may be shed when the pool is saturated (priority below 0).
    pub fn is_sheddable(&self) -> bool {
        self.priority < 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_case_insensitive() {
        let h = [("X-Request-Id", "abc")];
        assert_eq!(Headers(&h).get("x-request-id"), Some("abc"));
        assert_eq!(Headers(&h).get("other"), None);
    }
}

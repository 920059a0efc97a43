//! Response-side helpers: token usage from whole JSON bodies and from server-sent events, and
//! rewriting the model name back to the one the client asked for.
//!
//! Usage follows the reference's `ParseResponse` (`epp-reference.md` §2.6): in an SSE stream,
//! the first `data:` line whose JSON has `usage` (or, for the Responses API, `response.usage`
//! of a `response.completed` event); otherwise the whole body's `usage`. Token fields are
//! `prompt_tokens`/`completion_tokens` or `input_tokens`/`output_tokens`, and
//! `prompt_tokens_details.cached_tokens` (or `input_tokens_details.cached_tokens`).

use memchr::memmem;
use serde::Deserialize;

/// Token counts reported by the model server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Prompt (input) tokens.
    pub prompt_tokens: u64,
    /// Completion (output) tokens.
    pub completion_tokens: u64,
    /// Prompt tokens served from the server's prefix cache.
    pub cached_tokens: u64,
}

#[derive(Deserialize)]
struct UsageEnvelope {
    #[serde(default)]
    usage: Option<RawUsage>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    response: Option<ResponseEnvelope>,
}

#[derive(Deserialize)]
struct ResponseEnvelope {
    #[serde(default)]
    usage: Option<RawUsage>,
}

#[derive(Deserialize, Default)]
struct RawUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    prompt_tokens_details: Option<Details>,
    input_tokens_details: Option<Details>,
}

#[derive(Deserialize, Default)]
struct Details {
    cached_tokens: Option<u64>,
}

impl RawUsage {
    fn into_usage(self) -> Usage {
        let details = self.prompt_tokens_details.or(self.input_tokens_details);
        Usage {
            prompt_tokens: self.prompt_tokens.or(self.input_tokens).unwrap_or(0),
            completion_tokens: self.completion_tokens.or(self.output_tokens).unwrap_or(0),
            cached_tokens: details.and_then(|d| d.cached_tokens).unwrap_or(0),
        }
    }
}

/// Usage from one JSON document (a whole response body or one SSE `data:` payload).
///
/// ```
/// use pointsman_extproc::response::usage_from_json;
/// let u = usage_from_json(br#"{"object":"chat.completion","usage":{"prompt_tokens":5,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":2}}}"#).unwrap();
/// assert_eq!((u.prompt_tokens, u.completion_tokens, u.cached_tokens), (5, 7, 2));
/// ```
pub fn usage_from_json(doc: &[u8]) -> Option<Usage> {
    memmem::find(doc, b"\"usage\"")?;
    let env: UsageEnvelope = serde_json::from_slice(doc).ok()?;
    if env.kind.as_deref() == Some("response.completed") {
        if let Some(u) = env.response.and_then(|r| r.usage) {
            return Some(u.into_usage());
        }
    }
    env.usage.map(RawUsage::into_usage)
}

/// Scans a server-sent-event stream chunk by chunk for usage; lines split across chunks are
/// joined (a line longer than [`SseScanner::MAX_LINE`] is dropped).
#[derive(Debug, Default)]
pub struct SseScanner {
    partial: Vec<u8>,
    usage: Option<Usage>,
    overflow: bool,
}

impl SseScanner {
    /// Longest line kept across chunks: 1 MiB.
    pub const MAX_LINE: usize = 1 << 20;

    /// Feeds the next chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.usage.is_some() {
            return;
        }
        let mut rest = chunk;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            let (line, after) = rest.split_at(nl);
            rest = after.get(1..).unwrap_or_default();
            if self.partial.is_empty() && !self.overflow {
                self.line(line);
            } else {
                if !self.overflow {
                    self.partial.extend_from_slice(line);
                    let joined = std::mem::take(&mut self.partial);
                    self.line(&joined);
                }
                self.partial.clear();
                self.overflow = false;
            }
            if self.usage.is_some() {
                return;
            }
        }
        if !rest.is_empty() && !self.overflow {
            if self.partial.len() + rest.len() > Self::MAX_LINE {
                self.partial.clear();
                self.overflow = true;
            } else {
                self.partial.extend_from_slice(rest);
            }
        }
    }

    /// Treats what is left as a last line (call at end of stream).
    pub fn finish(&mut self) {
        if self.usage.is_none() && !self.partial.is_empty() && !self.overflow {
            let last = std::mem::take(&mut self.partial);
            self.line(&last);
        }
    }

    /// The usage found so far.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        let data = data.strip_prefix(b" ").unwrap_or(data);
        if data == b"[DONE]" {
            return;
        }
        if let Some(u) = usage_from_json(data) {
            self.usage = Some(u);
        }
    }
}

/// Replaces `"model":<from>` by `"model":<to>` in `chunk` (also with a space after the colon),
/// where `from` and `to` are model names; `None` when nothing matched.
///
/// ```
/// use pointsman_extproc::response::ModelRewriter;
/// let r = ModelRewriter::new("target", "asked");
/// assert_eq!(r.apply(br#"{"model": "target","x":1}"#).unwrap(), br#"{"model": "asked","x":1}"#);
/// assert!(r.apply(b"{}").is_none());
/// ```
#[derive(Debug, Clone)]
pub struct ModelRewriter {
    patterns: [(Vec<u8>, Vec<u8>); 2],
}

impl ModelRewriter {
    /// Rewrites `from` (the model sent upstream) back to `to` (the model the client asked for).
    pub fn new(from: &str, to: &str) -> Self {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let (from, to) = (q(from), q(to));
        ModelRewriter {
            patterns: [
                (
                    format!("\"model\":{from}").into_bytes(),
                    format!("\"model\":{to}").into_bytes(),
                ),
                (
                    format!("\"model\": {from}").into_bytes(),
                    format!("\"model\": {to}").into_bytes(),
                ),
            ],
        }
    }

    /// The rewritten chunk, or `None` if no occurrence was found.
    pub fn apply(&self, chunk: &[u8]) -> Option<Vec<u8>> {
        for (from, to) in &self.patterns {
            let finder = memmem::Finder::new(from);
            let mut hits = finder.find_iter(chunk).peekable();
            if hits.peek().is_none() {
                continue;
            }
            let mut out = Vec::with_capacity(chunk.len() + 16);
            let mut last = 0;
            for at in hits {
                out.extend_from_slice(chunk.get(last..at).unwrap_or_default());
                out.extend_from_slice(to);
                last = at + from.len();
            }
            out.extend_from_slice(chunk.get(last..).unwrap_or_default());
            return Some(out);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_usage_across_chunks() {
        let stream = b"data: {\"choices\":[]}\n\ndata: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\ndata: [DONE]\n\n";
        for split in 1..stream.len() {
            let mut s = SseScanner::default();
            let (a, b) = stream.split_at(split);
            s.feed(a);
            s.feed(b);
            s.finish();
            let u = s.usage().unwrap();
            assert_eq!(
                (u.prompt_tokens, u.completion_tokens),
                (3, 4),
                "split {split}"
            );
        }
    }

    #[test]
    fn responses_api_completed_event() {
        let mut s = SseScanner::default();
        s.feed(b"data: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":9,\"output_tokens\":1,\"input_tokens_details\":{\"cached_tokens\":8}}}}\n");
        assert_eq!(
            s.usage(),
            Some(Usage {
                prompt_tokens: 9,
                completion_tokens: 1,
                cached_tokens: 8
            })
        );
    }

    #[test]
    fn no_usage() {
        assert!(usage_from_json(b"{\"x\":1}").is_none());
        assert!(usage_from_json(b"not json \"usage\"").is_none());
    }

    #[test]
    fn rewrite_every_occurrence() {
        let r = ModelRewriter::new("a", "b");
        assert_eq!(
            r.apply(br#"x"model":"a"y"model":"a""#).unwrap(),
            br#"x"model":"b"y"model":"b""#
        );
    }
}

//! Turning a prompt into a chain of block hashes.
//!
//! ```text
//! h₀   = xxh3(model)                 or xxh3(model ‖ 0x00 ‖ cache_salt)
//! hᵢ₊₁ = xxh3_seeded(blockᵢ, seed = hᵢ)
//! ```
//!
//! Blocks are `block_bytes` bytes of the prompt's serialisation (characters for text, as the
//! reference counts them; 4 bytes per token for token ids). The trailing partial block is hashed
//! too (as GIE-last does); a prompt shorter than one block yields no hash at all. At most
//! `max_blocks` hashes are produced. Because each hash seeds the next, equal hashes at position
//! `i` mean equal prefixes up to `i` (up to 64-bit collisions), for the same model and salt.
//!
//! Chat messages are serialised as `role 0x1F content 0x1E` per message, streamed through a
//! block buffer without building the whole string. The reference hashes Go's JSON encoding of the
//! messages; the index is private to one picker, so only determinism matters.

use crate::request::{Prompt, Request};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

const UNIT_SEPARATOR: u8 = 0x1f;
const RECORD_SEPARATOR: u8 = 0x1e;

/// Hashes `request`'s prompt into `out` (cleared first). `block_bytes` applies to text, chat and
/// raw bytes; `block_tokens` to token ids. `scratch` holds a partial block across message
/// boundaries; both buffers are reused across calls, so a warm call allocates nothing.
pub fn hash_prompt(
    request: &Request<'_>,
    block_bytes: usize,
    block_tokens: usize,
    max_blocks: usize,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u64>,
) {
    out.clear();
    scratch.clear();
    let seed = chain_seed(request.target_model, request.cache_salt);
    match request.prompt {
        Prompt::None => {}
        Prompt::Text(s) => hash_contiguous(s.as_bytes(), block_bytes, max_blocks, seed, out),
        Prompt::Bytes(b) => hash_contiguous(b, block_bytes, max_blocks, seed, out),
        Prompt::Chat(messages) => {
            let mut chain = Chain::new(block_bytes, max_blocks, seed, scratch, out);
            for m in messages {
                chain.feed(m.role.as_bytes());
                chain.feed(&[UNIT_SEPARATOR]);
                chain.feed(m.content.as_bytes());
                chain.feed(&[RECORD_SEPARATOR]);
                if chain.full() {
                    break;
                }
            }
            chain.finish();
        }
        Prompt::TokenIds(tokens) => {
            let mut chain = Chain::new(
                block_tokens.saturating_mul(4),
                max_blocks,
                seed,
                scratch,
                out,
            );
            for t in tokens {
                chain.feed(&t.to_le_bytes());
                if chain.full() {
                    break;
                }
            }
            chain.finish();
        }
    }
}

/// `h₀` for `model` and `salt`.
pub fn chain_seed(model: &str, salt: Option<&str>) -> u64 {
    match salt {
        Some(salt) if !salt.is_empty() => {
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            h.update(model.as_bytes());
            h.update(&[0]);
            h.update(salt.as_bytes());
            h.digest()
        }
        _ => xxh3_64(model.as_bytes()),
    }
}

#[inline]
fn nonzero(h: u64) -> u64 {
    h.max(1)
}

fn hash_contiguous(bytes: &[u8], block: usize, max_blocks: usize, seed: u64, out: &mut Vec<u64>) {
    if block == 0 || bytes.len() < block {
        return;
    }
    let limit = bytes.len().min(block.saturating_mul(max_blocks));
    let mut prev = seed;
    for chunk in bytes[..limit].chunks(block) {
        prev = nonzero(xxh3_64_with_seed(chunk, prev));
        out.push(prev);
    }
}

/// A streaming block assembler for prompts made of several pieces.
struct Chain<'a> {
    block: usize,
    max_blocks: usize,
    prev: u64,
    pending: &'a mut Vec<u8>,
    out: &'a mut Vec<u64>,
    /// Whether the prompt reached at least one full block.
    any_full: bool,
}

impl<'a> Chain<'a> {
    fn new(
        block: usize,
        max_blocks: usize,
        seed: u64,
        pending: &'a mut Vec<u8>,
        out: &'a mut Vec<u64>,
    ) -> Self {
        Chain {
            block,
            max_blocks,
            prev: seed,
            pending,
            out,
            any_full: false,
        }
    }

    #[inline]
    fn full(&self) -> bool {
        self.block == 0 || self.out.len() >= self.max_blocks
    }

    #[inline]
    fn emit(&mut self, block: &[u8]) {
        self.prev = nonzero(xxh3_64_with_seed(block, self.prev));
        self.out.push(self.prev);
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && !self.full() {
            if self.pending.is_empty() && bytes.len() >= self.block {
                let (block, rest) = bytes.split_at(self.block);
                self.emit(block);
                self.any_full = true;
                bytes = rest;
                continue;
            }
            let take = (self.block - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() == self.block {
                let pending = std::mem::take(self.pending);
                self.emit(&pending);
                *self.pending = pending;
                self.pending.clear();
                self.any_full = true;
            }
        }
    }

    fn finish(self) {
        if !self.any_full {
            // Shorter than one block: no hashes, as in the reference.
            self.out.clear();
            return;
        }
        if !self.pending.is_empty() && self.out.len() < self.max_blocks {
            let prev = nonzero(xxh3_64_with_seed(self.pending, self.prev));
            self.out.push(prev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::ChatMessage;

    fn hashes(req: &Request<'_>, block: usize, max: usize) -> Vec<u64> {
        let (mut s, mut out) = (Vec::new(), Vec::new());
        hash_prompt(req, block, block / 4, max, &mut s, &mut out);
        out
    }

    #[test]
    fn counts_blocks_including_partial() {
        let text = "a".repeat(64 * 3 + 10);
        let r = Request::new("r", "m").with_prompt(Prompt::Text(&text));
        assert_eq!(hashes(&r, 64, 256).len(), 4);
        assert_eq!(hashes(&r, 64, 2).len(), 2, "capped by max_blocks");
        let short = "a".repeat(63);
        let r = Request::new("r", "m").with_prompt(Prompt::Text(&short));
        assert!(hashes(&r, 64, 256).is_empty(), "shorter than a block");
    }

    #[test]
    fn chain_depends_on_prefix_model_and_salt() {
        let a = format!("{}{}", "x".repeat(128), "tail-a");
        let b = format!("{}{}", "x".repeat(128), "tail-b");
        let ra = Request::new("r", "m").with_prompt(Prompt::Text(&a));
        let rb = Request::new("r", "m").with_prompt(Prompt::Text(&b));
        let (ha, hb) = (hashes(&ra, 64, 256), hashes(&rb, 64, 256));
        assert_eq!(ha[..2], hb[..2]);
        assert_ne!(ha[2], hb[2]);
        let other_model = Request::new("r", "m2").with_prompt(Prompt::Text(&a));
        assert_ne!(hashes(&other_model, 64, 256)[0], ha[0]);
        let salted = ra.with_cache_salt("s");
        assert_ne!(hashes(&salted, 64, 256)[0], ha[0]);
    }

    #[test]
    fn chat_streaming_equals_contiguous_serialisation() {
        let msgs = [
            ChatMessage::new("system", "s".repeat(100)),
            ChatMessage::new("user", "u".repeat(37)),
            ChatMessage::new("assistant", "a".repeat(200)),
        ];
        let mut flat = Vec::new();
        for m in &msgs {
            flat.extend_from_slice(m.role.as_bytes());
            flat.push(UNIT_SEPARATOR);
            flat.extend_from_slice(m.content.as_bytes());
            flat.push(RECORD_SEPARATOR);
        }
        let chat = Request::new("r", "m").with_prompt(Prompt::Chat(&msgs));
        let bytes = Request::new("r", "m").with_prompt(Prompt::Bytes(&flat));
        for (block, max) in [(64, 256), (16, 5), (7, 1000)] {
            assert_eq!(
                hashes(&chat, block, max),
                hashes(&bytes, block, max),
                "block {block} max {max}"
            );
        }
    }

    #[test]
    fn tokens_hash_in_token_blocks() {
        let tokens: Vec<u32> = (0..40).collect();
        let r = Request::new("r", "m").with_prompt(Prompt::TokenIds(&tokens));
        let (mut s, mut out) = (Vec::new(), Vec::new());
        hash_prompt(&r, 64, 16, 256, &mut s, &mut out);
        assert_eq!(out.len(), 3, "16 + 16 + 8 tokens");
        let mut prefix = tokens.clone();
        prefix[39] = 999;
        let r2 = Request::new("r", "m").with_prompt(Prompt::TokenIds(&prefix));
        let mut out2 = Vec::new();
        hash_prompt(&r2, 64, 16, 256, &mut s, &mut out2);
        assert_eq!(out[..2], out2[..2]);
        assert_ne!(out[2], out2[2]);
    }
}

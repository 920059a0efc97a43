//! Fuzzes the scraper's HTTP/1.1 response framing (`pointsman_scraper::http1`).
//!
//! Properties beyond "no panic":
//! 1. any input either frames to a status and body or is refused with an `HttpError`;
//!    a framed body is never longer than the input;
//! 2. the input, used as a body and chunked with sizes taken from its own bytes, decodes
//!    back to itself — whole, and fed to the decoder in pieces as reads would deliver it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pointsman_scraper::http1::{ChunkedDecoder, parse_complete_response};

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    let mut sizes = body.iter().cycle();
    while !rest.is_empty() {
        let n = usize::from(*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        out.extend_from_slice(format!("{n:X}\r\n").as_bytes());
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fuzz_target!(|data: &[u8]| {
    if let Ok((_, body)) = parse_complete_response(data) {
        assert!(body.len() <= data.len());
    }

    let encoded = chunked(data);
    let step = data.first().map_or(1, |b| usize::from(*b % 61) + 1);
    let mut buf = Vec::new();
    let mut decoder = ChunkedDecoder::new();
    let mut done = None;
    for piece in encoded.chunks(step) {
        assert!(done.is_none(), "decoder finished before the input ended");
        buf.extend_from_slice(piece);
        done = decoder.decode(&mut buf).expect("well-formed chunked body");
    }
    let (decoded, used) = done.expect("decoder finished");
    assert_eq!(used, encoded.len());
    assert_eq!(&buf[..decoded], data);
});

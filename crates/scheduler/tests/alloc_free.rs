//! A warm decision allocates nothing: the hot path reuses per-thread buffers.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use pointsman::testing::{TEST_NOW, pool};
use pointsman::time::ManualClock;
use pointsman::{ChatMessage, Prompt, Request, Scheduler};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to `System`, counting calls made on this thread while counting is on.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn warm_decisions_do_not_allocate() {
    let s = Scheduler::builder()
        .seed(1)
        .clock(Arc::new(ManualClock::new(TEST_NOW)))
        .build_default();
    let mut b = pool();
    for i in 0..64 {
        b = b
            .endpoint(&format!("e{i}"))
            .queue(i % 7)
            .kv(f64::from(i % 10) / 10.0)
            .cache(16, 31_250);
    }
    b.fill(s.pool());
    let system = "You are a helpful assistant. ".repeat(300);
    let messages = [
        ChatMessage::new("system", system.as_str()),
        ChatMessage::new("user", "hello"),
    ];
    let request = Request::new("r", "llama").with_prompt(Prompt::Chat(&messages));
    // Warm up: buffers grow, the prompt's blocks enter the index.
    for _ in 0..10 {
        let d = s.schedule(&request).unwrap();
        s.complete(&d);
    }
    COUNTING.with(|c| c.set(true));
    for _ in 0..1000 {
        let d = s.schedule(&request).unwrap();
        s.complete(&d);
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(
        ALLOCATIONS.with(Cell::get),
        0,
        "allocations in 1,000 warm decisions"
    );
}

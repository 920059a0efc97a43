//! Runnable examples of pointsman; see the `[[example]]` entries.

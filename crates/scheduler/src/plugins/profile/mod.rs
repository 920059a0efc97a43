//! Profile handlers: which profiles run for a request, and which result is primary.

pub mod single_profile_handler;

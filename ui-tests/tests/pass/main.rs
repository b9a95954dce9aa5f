//! Compile-pass cases of `#[llm_retry]`: one module per file, each a small program that uses
//! the attribute the way a user would, with its own lint levels, and a `compiles` test that
//! builds (and drops) every annotated fn's future.
//!
//! An ordinary test binary, not trybuild: trybuild builds every dependency again in a target
//! directory of its own, and in `cargo build` mode (it links and runs its pass cases), where the
//! fail cases alone need only `cargo check` (tests/ui.rs). These compile once, in the workspace's
//! target, beside every other test.
//!
//! `lints` and `stream` are `pub mod`s: their `pub` fns must be reachable, as at a crate's root,
//! for `unreachable_pub` and `missing_docs` to check the expansion.
//!
//! A module sees the crate root's names only through `crate::`, so `crate_path` names its
//! re-export `crate::crate_path::reexports`; `shadowing`'s `mod core {}` and `mod std {}` shadow
//! those crates inside its module, which is where the attribute expands.

mod adaptive;
mod all_keys;
mod anyhow_result;
mod box_dyn_error;
mod budget;
mod crate_path;
mod eyre_result;
mod fallback;
mod generics;
mod instrument;
mod limiter;
pub mod lints;
mod loaded_policy;
mod question_mark;
mod receivers;
mod shadowing;
pub mod stream;
mod stream_builder_limiter;
mod stream_limiter;
mod tokens;
mod with_async_trait;

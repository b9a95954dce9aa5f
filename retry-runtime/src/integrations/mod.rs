//! [`Classify`](crate::Classify) for third-party crates' errors, each behind its feature:
//! `reqwest` (`reqwest::Error`, `ApiError::from_reqwest_response`, and `SendObserved`, which
//! feeds a limiter the response's rate-limit headers), `async-openai`
//! (`async_openai::error::OpenAIError`; implies `reqwest`), and the application error types
//! `anyhow` (`anyhow::Error`) and `eyre` (`eyre::Report`), classified by their chains.

#[cfg(feature = "anyhow")]
mod anyhow;
#[cfg(feature = "async-openai")]
mod async_openai;
#[cfg(feature = "eyre")]
mod eyre;
#[cfg(feature = "reqwest")]
mod reqwest;

#[cfg(feature = "reqwest")]
pub use reqwest::SendObserved;

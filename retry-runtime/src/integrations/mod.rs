//! [`Classify`](crate::Classify) for third-party HTTP clients' errors, each behind its
//! feature: `reqwest` (`reqwest::Error`, and `ApiError::from_reqwest_response`) and
//! `async-openai` (`async_openai::error::OpenAIError`; implies `reqwest`).

#[cfg(feature = "async-openai")]
mod async_openai;
#[cfg(feature = "reqwest")]
mod reqwest;

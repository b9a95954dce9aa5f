//! [`PolicySlot`]: a policy loaded once at startup, in a `static` that annotated fns and
//! builder calls read.

use crate::Policy;
use core::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// A policy set once at startup, from configuration, in a `static`: until it is set, readers
/// get the fallback it was declared with (and a warning, once).
///
/// Declare it with the policy to use should the configuration never be loaded (the attribute's
/// `const` policy, or [`Policy::DEFAULT`]); set it once, before the first call, from a file or
/// the environment; read it at each call. Reading costs one atomic load.
///
/// ```
/// use llm_retry_runtime::{ApiError, Policy, RetryExt, config::PolicySlot};
///
/// static CHAT: PolicySlot = PolicySlot::new("chat", Policy::DEFAULT);
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # #[cfg(feature = "serde")] {
/// // At startup:
/// CHAT.set(llm_retry_runtime::config::from_toml_str("max = 2\nbase = \"250ms\"")?.policy)?;
/// // At each call:
/// let out: Result<u8, ApiError> = CHAT.get().retry(|| async { Err(ApiError::from_status(503)) }).await;
/// assert!(out.is_err());
/// assert_eq!(CHAT.get().max_attempts(), 2);
/// // Set once: a second `set` is an error, and the first policy stays.
/// assert!(CHAT.set(Policy::DEFAULT).is_err());
/// # }
/// # Ok(()) }
/// ```
pub struct PolicySlot {
    name: &'static str,
    fallback: Policy,
    loaded: OnceLock<Policy>,
    warned: AtomicBool,
}

/// [`PolicySlot::set`] on a slot that is already set: the slot keeps its first policy.
///
/// ```
/// use llm_retry_runtime::{Policy, config::PolicySlot};
/// static S: PolicySlot = PolicySlot::new("docs::already", Policy::DEFAULT);
/// S.set(Policy::DEFAULT).unwrap();
/// let e = S.set(Policy::DEFAULT).unwrap_err();
/// assert!(e.to_string().contains("docs::already"));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AlreadySet {
    /// The slot's name.
    pub name: &'static str,
}

impl fmt::Display for AlreadySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the policy `{}` is already set; set it once, at startup", self.name)
    }
}

impl std::error::Error for AlreadySet {}

impl PolicySlot {
    /// A slot named `name` (for its messages) that holds `fallback` until it is set.
    ///
    /// ```
    /// use llm_retry_runtime::{Policy, config::PolicySlot};
    /// static CHAT: PolicySlot = PolicySlot::new("chat", Policy::DEFAULT);
    /// assert!(!CHAT.is_set());
    /// ```
    pub const fn new(name: &'static str, fallback: Policy) -> PolicySlot {
        PolicySlot { name, fallback, loaded: OnceLock::new(), warned: AtomicBool::new(false) }
    }

    /// Sets the loaded policy, once: a second call returns [`AlreadySet`] and changes nothing.
    /// Calls that start afterwards use it; a call already running keeps the policy it
    /// started with.
    ///
    /// ```
    /// use llm_retry_runtime::{Policy, config::PolicySlot};
    /// static S: PolicySlot = PolicySlot::new("docs::set", Policy::DEFAULT);
    /// S.set(Policy::builder().max_attempts(2).build().unwrap()).unwrap();
    /// assert_eq!(S.get().max_attempts(), 2);
    /// ```
    pub fn set(&self, policy: Policy) -> Result<(), AlreadySet> {
        self.loaded.set(policy).map_err(|_| AlreadySet { name: self.name })
    }

    /// The loaded policy, or the fallback until one is set. The first read of the fallback
    /// logs a warning (target `llm_retry`), so that a configuration that was never loaded
    /// does not go unnoticed; later reads are silent.
    ///
    /// ```
    /// use llm_retry_runtime::{Policy, config::PolicySlot};
    /// static S: PolicySlot = PolicySlot::new("docs::get", Policy::DEFAULT);
    /// assert_eq!(S.get().max_attempts(), Policy::DEFAULT.max_attempts());
    /// ```
    #[inline]
    pub fn get(&self) -> &Policy {
        match self.loaded.get() {
            Some(p) => p,
            None => self.fallback_read(),
        }
    }

    #[cold]
    fn fallback_read(&self) -> &Policy {
        if !self.warned.swap(true, Relaxed) {
            tracing::warn!(
                target: "llm_retry",
                policy = self.name,
                "the policy `{}` was read before it was set: calls use its fallback until `set`",
                self.name
            );
        }
        &self.fallback
    }

    /// Whether the loaded policy has been set.
    ///
    /// ```
    /// use llm_retry_runtime::{Policy, config::PolicySlot};
    /// static S: PolicySlot = PolicySlot::new("docs::is_set", Policy::DEFAULT);
    /// S.set(Policy::DEFAULT).unwrap();
    /// assert!(S.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.loaded.get().is_some()
    }

    /// The policy used until one is set.
    ///
    /// ```
    /// use llm_retry_runtime::{Policy, config::PolicySlot};
    /// static S: PolicySlot = PolicySlot::new("docs::fallback", Policy::DEFAULT);
    /// assert_eq!(S.fallback().max_attempts(), 4);
    /// ```
    pub const fn fallback(&self) -> &Policy {
        &self.fallback
    }

    /// The slot's name.
    ///
    /// ```
    /// use llm_retry_runtime::{Policy, config::PolicySlot};
    /// static S: PolicySlot = PolicySlot::new("chat", Policy::DEFAULT);
    /// assert_eq!(S.name(), "chat");
    /// ```
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl fmt::Debug for PolicySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicySlot")
            .field("name", &self.name)
            .field("loaded", &self.loaded.get())
            .field("fallback", &self.fallback)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing::Subscriber;
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

    /// Counts warnings.
    struct Warnings(Arc<Mutex<u32>>);
    impl<S: Subscriber> Layer<S> for Warnings {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            if *event.metadata().level() == tracing::Level::WARN {
                *self.0.lock().unwrap() += 1;
            }
        }
    }

    #[test]
    fn reading_the_fallback_warns_once_and_set_still_works() {
        static S: PolicySlot = PolicySlot::new("tests::warns_once", Policy::DEFAULT);
        let count = Arc::new(Mutex::new(0));
        let subscriber = tracing_subscriber::registry().with(Warnings(count.clone()));
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..3 {
                assert_eq!(S.get().max_attempts(), 4);
            }
            let two = Policy::builder().max_attempts(2).build().unwrap();
            S.set(two).unwrap();
            assert_eq!(S.get().max_attempts(), 2);
            let e = S.set(Policy::DEFAULT).unwrap_err();
            assert_eq!(e.name, "tests::warns_once");
            assert_eq!(S.get().max_attempts(), 2);
        });
        assert_eq!(*count.lock().unwrap(), 1);
    }
}

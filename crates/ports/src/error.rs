//! One error class for every port: retryable (a service down, a throttle, a dropped
//! connection: the state machine retries with backoff) or fatal (bad configuration, bad data:
//! caught into the failure path).

use std::error::Error as StdError;
use std::fmt;

/// The Lambda error type of errors worth retrying; statemachine.asl.json matches it.
pub const RETRYABLE_ERROR: &str = "RetryableError";
/// The Lambda error type of errors that a retry cannot fix.
pub const FATAL_ERROR: &str = "FatalError";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Retryable,
    Fatal,
}

impl ErrorClass {
    pub fn of(retryable: bool) -> Self {
        if retryable {
            ErrorClass::Retryable
        } else {
            ErrorClass::Fatal
        }
    }

    /// The stable Lambda error type name (`RetryableError` or `FatalError`).
    pub fn error_type(self) -> &'static str {
        match self {
            ErrorClass::Retryable => RETRYABLE_ERROR,
            ErrorClass::Fatal => FATAL_ERROR,
        }
    }
}

/// A typed error that knows whether trying again may help. Every adapter's error implements
/// it, so a caller (a Lambda, the state machine) never guesses.
pub trait Classified: StdError {
    fn class(&self) -> ErrorClass;

    fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }

    fn error_type(&self) -> &'static str {
        self.class().error_type()
    }
}

/// What a port returns when its service fails: the class, and the adapter's own typed error
/// inside, which a caller that knows the adapter can look at ([`PortError::downcast_ref`]),
/// e.g. to refresh a rotated secret after a refused login.
#[derive(Debug)]
pub struct PortError {
    class: ErrorClass,
    inner: Box<dyn StdError + Send + Sync + 'static>,
}

impl PortError {
    /// Wrap an adapter's typed error, keeping its class.
    pub fn new<E: Classified + Send + Sync + 'static>(e: E) -> Self {
        Self {
            class: e.class(),
            inner: Box::new(e),
        }
    }

    /// An error of this class with a message only (a malformed row stream, a closed reader).
    pub fn message(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            inner: message.into().into(),
        }
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        Self::message(ErrorClass::Fatal, message)
    }

    /// The adapter's error, when it is an `E`.
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.inner.downcast_ref::<E>()
    }
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl StdError for PortError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.source()
    }
}

impl Classified for PortError {
    fn class(&self) -> ErrorClass {
        self.class
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("server busy")]
    struct Busy;

    impl Classified for Busy {
        fn class(&self) -> ErrorClass {
            ErrorClass::Retryable
        }
    }

    #[test]
    fn the_class_and_the_typed_error_survive_the_port() {
        let e = PortError::new(Busy);
        assert!(e.is_retryable());
        assert_eq!(e.error_type(), RETRYABLE_ERROR);
        assert_eq!(e.to_string(), "server busy");
        assert!(e.downcast_ref::<Busy>().is_some());
        let m = PortError::fatal("row 3: not UTF-8");
        assert_eq!(m.error_type(), FATAL_ERROR);
        assert!(m.downcast_ref::<Busy>().is_none());
    }
}

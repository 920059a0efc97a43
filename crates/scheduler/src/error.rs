//! Errors: decisions that could not be made, and configurations that could not be loaded.

use std::fmt;
use std::sync::Arc;

/// The reference picker's error codes, which fix the HTTP status of the gateway's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: the request body or model is unusable.
    BadRequest,
    /// 429: shed, or nothing schedulable.
    ResourceExhausted,
    /// 503: no candidate endpoints.
    ServiceUnavailable,
    /// 500: anything else.
    Internal,
}

impl ErrorCode {
    /// The HTTP status the gateway answers with.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::ResourceExhausted => 429,
            ErrorCode::ServiceUnavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// The code's name as the reference prints it (`inference error: <Code> - <message>`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "BadRequest",
            ErrorCode::ResourceExhausted => "ResourceExhausted",
            ErrorCode::ServiceUnavailable => "ServiceUnavailable",
            ErrorCode::Internal => "Internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request could not be scheduled. Each variant maps to the reference's status code
/// through [`SchedulingError::code`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SchedulingError {
    /// The pool (or the gateway's subset of it) has no endpoints: 503.
    #[error("failed to find endpoint candidates for serving the request")]
    NoCandidates,
    /// A sheddable request met a saturated pool: 429.
    #[error("system saturated, sheddable request dropped (saturation {saturation:.3})")]
    Saturated {
        /// The saturation detector's value (at least 1.0).
        saturation: f64,
    },
    /// Every profile failed; `profile` and `filter` name the first failure: 429.
    #[error(
        "failed to find target endpoint: profile {profile:?}: filter {filter:?} left no endpoints available for the given request"
    )]
    AllFilteredOut {
        /// The profile whose filters emptied the candidate list.
        profile: Arc<str>,
        /// The filter that returned no endpoints.
        filter: Arc<str>,
    },
    /// A profile's picker chose nothing (only a faulty custom picker does this): 429.
    #[error("failed to find target endpoint: profile {profile:?}: picker chose no endpoint")]
    NothingPicked {
        /// The profile.
        profile: Arc<str>,
    },
    /// The profile handler rejected the results: 429.
    #[error("failed to find target endpoint: {reason}")]
    ProfileFailed {
        /// Why.
        reason: String,
    },
    /// An admission plugin denied the request: 500, as in the reference.
    #[error("request cannot be admitted (denied by {plugin:?})")]
    AdmissionDenied {
        /// The plugin that denied it.
        plugin: Arc<str>,
    },
    /// The request is unusable: 400.
    #[error("{reason}")]
    BadRequest {
        /// Why.
        reason: String,
    },
    /// Anything else: 500.
    #[error("{reason}")]
    Internal {
        /// Why.
        reason: String,
    },
}

impl SchedulingError {
    /// The reference's error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            SchedulingError::NoCandidates => ErrorCode::ServiceUnavailable,
            SchedulingError::Saturated { .. }
            | SchedulingError::AllFilteredOut { .. }
            | SchedulingError::NothingPicked { .. }
            | SchedulingError::ProfileFailed { .. } => ErrorCode::ResourceExhausted,
            SchedulingError::AdmissionDenied { .. } | SchedulingError::Internal { .. } => {
                ErrorCode::Internal
            }
            SchedulingError::BadRequest { .. } => ErrorCode::BadRequest,
        }
    }

    /// The HTTP status the gateway answers with.
    pub fn http_status(&self) -> u16 {
        self.code().http_status()
    }
}

/// One problem found in a configuration: where, which plugin, what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The path of the offending field, e.g. `plugins[2].parameters.blockSize` or
    /// `schedulingProfiles[0].plugins[1].pluginRef`.
    pub path: String,
    /// The plugin concerned, as `name (type)`, when there is one.
    pub plugin: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.plugin {
            Some(p) if !self.path.is_empty() => {
                write!(f, "{} ({}): {}", self.path, p, self.message)
            }
            Some(p) => write!(f, "({}): {}", p, self.message),
            None if !self.path.is_empty() => write!(f, "{}: {}", self.path, self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A configuration that could not be loaded, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    issues: Vec<ConfigIssue>,
}

impl ConfigError {
    /// An error with the given issues (at least one).
    pub fn new(issues: Vec<ConfigIssue>) -> Self {
        ConfigError { issues }
    }

    /// An error with one issue.
    pub fn single(
        path: impl Into<String>,
        plugin: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            issues: vec![ConfigIssue {
                path: path.into(),
                plugin,
                message: message.into(),
            }],
        }
    }

    /// Every problem found.
    pub fn issues(&self) -> &[ConfigIssue] {
        &self.issues
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.issues.as_slice() {
            [] => f.write_str("invalid EndpointPickerConfig"),
            [one] => write!(f, "invalid EndpointPickerConfig: {one}"),
            many => {
                write!(f, "invalid EndpointPickerConfig ({} problems):", many.len())?;
                for issue in many {
                    write!(f, "\n  - {issue}")?;
                }
                Ok(())
            }
        }
    }
}

/// A bad plugin parameter: the field path inside `parameters` and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ParamError {
    /// The parameter's path, e.g. `blockSizeTokens`.
    pub field: String,
    /// What was expected, and what was found.
    pub message: String,
}

impl ParamError {
    /// A parameter error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ParamError {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_follow_the_reference() {
        assert_eq!(SchedulingError::NoCandidates.http_status(), 503);
        assert_eq!(
            SchedulingError::Saturated { saturation: 1.0 }.http_status(),
            429
        );
        let f = SchedulingError::AllFilteredOut {
            profile: "default".into(),
            filter: "f".into(),
        };
        assert_eq!(f.http_status(), 429);
        assert_eq!(
            SchedulingError::AdmissionDenied { plugin: "a".into() }.http_status(),
            500
        );
        assert_eq!(
            SchedulingError::BadRequest { reason: "x".into() }.http_status(),
            400
        );
    }

    #[test]
    fn config_error_lists_every_issue() {
        let e = ConfigError::new(vec![
            ConfigIssue {
                path: "plugins[0].parameters.blockSize".into(),
                plugin: Some("p (prefix-cache-scorer)".into()),
                message: "expected an integer ≥ 1, got 0".into(),
            },
            ConfigIssue {
                path: "schedulingProfiles[0]".into(),
                plugin: None,
                message: "x".into(),
            },
        ]);
        let s = e.to_string();
        assert!(s.contains("2 problems"), "{s}");
        assert!(
            s.contains("plugins[0].parameters.blockSize (p (prefix-cache-scorer)): expected"),
            "{s}"
        );
    }

    #[test]
    fn errors_are_small_and_thread_safe() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SchedulingError>();
        assert_send_sync::<ConfigError>();
        assert!(std::mem::size_of::<SchedulingError>() <= 40);
    }
}

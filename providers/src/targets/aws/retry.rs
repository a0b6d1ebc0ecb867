//! Which EC2 errors are worth another try, and how long to wait before it.
//!
//! Why our own retries and not the SDK's: the SDK retries a request as it
//! was sent. For RunInstances that is only safe if the service honours the
//! client token, and not every EC2-compatible endpoint does (moto 5.2
//! launches again on a repeated token). So the SDK's retries are off and
//! every retry goes through here, where a launch looks up its own tag before
//! it asks again (see [`super::launch`]).
//!
//! Retried: throttling (`RequestLimitExceeded`, `Throttling`, HTTP 429),
//! server errors (5xx), timeouts and connections that broke or never
//! opened. Not retried: everything the caller must change (credentials, an
//! instance spec the API rejects, quotas): those come back at once with the
//! service's code and message.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

pub use crate::targets::backoff::Backoff;

/// An EC2 call's failure, classified.
#[derive(Debug, Clone)]
pub struct CallError {
    /// The service's error code (`InstanceLimitExceeded`), or what broke.
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(hint) = hint(&self.code) {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// What the operator should do about an error, where the code says.
fn hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "AuthFailure" | "UnauthorizedOperation" | "InvalidClientTokenId" | "SignatureDoesNotMatch" => {
            "check the AWS credentials and the IAM policy of the host"
        }
        "NoCredentials" => "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or run with an instance or pod role",
        "InstanceLimitExceeded" | "VcpuLimitExceeded" | "MaxSpotInstanceCountExceeded" => {
            "an account quota: ask AWS for more, or lower the pool's max"
        }
        "InsufficientInstanceCapacity" => "AWS has no capacity of this type here now: allow other instance types or zones",
        "Unreachable" => "check endpoint_url and region, and that the host can reach it",
        c if c.starts_with("Invalid") => "fix the instance spec in the pool's provider config",
        _ => return None,
    })
}

/// Classify an SDK error.
pub fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(e: &SdkError<E, HttpResponse>) -> CallError {
    let chain = crate::error_chain(e);
    match e {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let err = ctx.err();
            let code = err.code().unwrap_or("Unknown").to_owned();
            let throttled = matches!(code.as_str(), "RequestLimitExceeded" | "Throttling" | "ThrottlingException" | "RequestThrottled")
                || status == 429;
            let server = status >= 500 || matches!(code.as_str(), "InternalError" | "ServiceUnavailable" | "Unavailable");
            CallError { code, message: err.message().unwrap_or(&chain).to_owned(), retryable: throttled || server }
        }
        SdkError::TimeoutError(_) => CallError { code: "Timeout".into(), message: chain, retryable: true },
        SdkError::DispatchFailure(d) => {
            if chain.contains("credentials") || chain.contains("identity") {
                CallError { code: "NoCredentials".into(), message: chain, retryable: false }
            } else if d.is_io() || d.is_timeout() || d.is_other() {
                CallError { code: "Unreachable".into(), message: chain, retryable: true }
            } else {
                CallError { code: "Dispatch".into(), message: chain, retryable: false }
            }
        }
        SdkError::ResponseError(_) => CallError { code: "BadResponse".into(), message: chain, retryable: true },
        _ => {
            let code = if chain.contains("credentials") || chain.contains("identity") { "NoCredentials" } else { "Request" };
            CallError { code: code.into(), message: chain, retryable: false }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_to_do() {
        let e = CallError { code: "InstanceLimitExceeded".into(), message: "limit 20".into(), retryable: false };
        assert!(e.to_string().contains("account quota"), "{e}");
        let e = CallError { code: "InvalidAMIID.NotFound".into(), message: "no ami-1".into(), retryable: false };
        assert!(e.to_string().contains("fix the instance spec"), "{e}");
    }
}

//! Error answers: every 4xx and 5xx is JSON `{ "error", "detail" }`.
//!
//! Handlers return [`ApiError`]. What axum and tower answer on their own (a
//! wrong method, a path parameter that does not decode, a request that ran
//! out of time) comes as plain text or an empty body; [`json_errors`], the
//! router's outermost layer, rewrites those into the same shape, keeping the
//! status and headers such as `Allow`. Query strings go through
//! [`ApiQuery`] so their mistakes name the parameter.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::metrics::ApiMetrics;
use super::types::ErrorBody;

/// Longest plain-text error body kept as the detail of its JSON rewrite.
const MAX_PLAIN_ERROR_BYTES: usize = 4096;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    /// Seconds for `Retry-After`, on answers that say "not now".
    retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: error.to_string(),
                detail: detail.into(),
            },
            retry_after: None,
        }
    }

    pub fn bad_request(error: &str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, error, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            detail.to_string(),
        )
    }

    /// 503 with `Retry-After`: the node is at a limit, the request was fine.
    pub fn busy(error: &str, detail: impl Into<String>, retry_after_seconds: u32) -> ApiError {
        ApiError {
            retry_after: Some(retry_after_seconds),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error, detail)
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// `Query<T>` whose rejection is a JSON 400 `bad_query` naming the
/// parameter that did not parse.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::bad_request(
                "bad_query",
                format!(
                    "{}; see the API table in the README for this route's parameters",
                    rejection.body_text()
                ),
            )),
        }
    }
}

/// The short code for an error status that a layer, not a handler, chose.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        // The request timeout layer is the only one that answers 503 without a body.
        StatusCode::SERVICE_UNAVAILABLE => "request_timeout",
        _ if status.is_client_error() => "bad_request",
        _ => "internal",
    }
}

/// What to tell a client that got `status` from a layer with no text.
fn default_detail(status: StatusCode) -> String {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            "this route does not take that method; the Allow header lists the ones it takes"
                .to_string()
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            "the request did not finish within the node's request timeout ([api_limits] request_timeout_ms); retry later".to_string()
        }
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is larger than this route takes".into(),
        other => other
            .canonical_reason()
            .unwrap_or("request refused")
            .to_string(),
    }
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}

/// Rewrites an error answer that is not JSON into `{ "error", "detail" }`,
/// keeping its status and headers. JSON answers pass untouched.
/// Counts the request timeouts (the only bodiless 503) in `metrics`.
pub async fn json_errors(State(metrics): State<Arc<ApiMetrics>>, response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        metrics.request_timeouts.inc();
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_PLAIN_ERROR_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let detail = if text.is_empty() {
        default_detail(status)
    } else {
        text
    };
    if status == StatusCode::SERVICE_UNAVAILABLE {
        parts
            .headers
            .entry(header::RETRY_AFTER)
            .or_insert(HeaderValue::from_static("1"));
    }
    let body = serde_json::to_vec(&ErrorBody {
        error: code_of(status).to_string(),
        detail,
    })
    .expect("an error body always serialises");
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn rewritten(response: Response) -> (Response, ErrorBody) {
        let metrics = Arc::new(ApiMetrics::new());
        let response = json_errors(State(metrics), response).await;
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 16).await.expect("a body");
        let error: ErrorBody = serde_json::from_slice(&bytes).expect("a JSON error");
        (Response::from_parts(parts, Body::empty()), error)
    }

    #[tokio::test]
    async fn a_bodiless_timeout_becomes_json_with_retry_after() {
        let bare = StatusCode::SERVICE_UNAVAILABLE.into_response();
        let (response, error) = rewritten(bare).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.error, "request_timeout");
        assert!(error.detail.contains("request_timeout_ms"), "{error:?}");
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[tokio::test]
    async fn a_plain_text_rejection_keeps_its_status_headers_and_text() {
        let mut plain = (StatusCode::METHOD_NOT_ALLOWED, "no such method").into_response();
        plain
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
        let (response, error) = rewritten(plain).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "GET,HEAD");
        assert_eq!(error.error, "method_not_allowed");
        assert_eq!(error.detail, "no such method");
    }

    #[tokio::test]
    async fn json_and_successful_answers_pass_untouched() {
        let metrics = Arc::new(ApiMetrics::new());
        let handled = ApiError::not_found("token x does not exist").into_response();
        let passed = json_errors(State(Arc::clone(&metrics)), handled).await;
        let bytes = axum::body::to_bytes(passed.into_body(), 1 << 16)
            .await
            .expect("a body");
        let error: ErrorBody = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(error.detail, "token x does not exist");
        let ok = json_errors(State(metrics), "fine".into_response()).await;
        assert_eq!(ok.status(), StatusCode::OK);
    }
}

//! The web dashboard: one page and one script, compiled into the binary (no
//! CDN, nothing to install). The script polls the API once a second and
//! draws each pool's load, capacity and desired capacity as SVG, the
//! decision feed with every expert's vote, and the policies table.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("../../assets/dashboard.html");
const SCRIPT: &str = include_str!("../../assets/dashboard.js");

pub async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

pub async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
}

//! The web dashboard: one page and one script, compiled into the binary (no
//! CDN, nothing to install). The script polls the API once a second and
//! draws each pool's load, capacity and desired capacity as SVG, the
//! decision feed with every expert's vote, and the policies table.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("../../assets/dashboard.html");
const SCRIPT: &str = include_str!("../../assets/dashboard.js");

/// The dashboard.
#[utoipa::path(get, path = "/", tag = "dashboard",
    responses((status = 200, description = "The dashboard's page", body = String, content_type = "text/html")))]
pub async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

/// The dashboard's script.
#[utoipa::path(get, path = "/dashboard.js", tag = "dashboard",
    responses((status = 200, description = "The script the page runs", body = String, content_type = "text/javascript")))]
pub async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
}

//! The storefront page, embedded in the binary so `reviews serve` needs no files beside it.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

pub const FILES: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../../../frontend/index.html"),
    ),
    (
        "/index.html",
        "text/html; charset=utf-8",
        include_str!("../../../frontend/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../frontend/app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("../../../frontend/style.css"),
    ),
    (
        "/config.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../frontend/config.js"),
    ),
    (
        "/favicon.svg",
        "image/svg+xml",
        include_str!("../../../frontend/favicon.svg"),
    ),
];

pub fn file(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // File names carry no content hash: browsers must revalidate.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

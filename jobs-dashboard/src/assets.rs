//! The stylesheet and the script, embedded in the crate and served at URLs
//! that carry a hash of their content, so browsers may cache them forever.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

const CSS: &str = include_str!("../assets/app.css");
const JS: &str = include_str!("../assets/app.js");

/// FNV-1a: enough to tell two versions of a file apart in a URL.
const fn fnv(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// The assets' file names, under `assets/`.
pub(crate) struct Names {
    pub(crate) css: String,
    pub(crate) js: String,
}

pub(crate) static NAMES: LazyLock<Names> = LazyLock::new(|| Names {
    css: format!("app-{:016x}.css", fnv(CSS.as_bytes())),
    js: format!("app-{:016x}.js", fnv(JS.as_bytes())),
});

pub(crate) async fn serve(Path(file): Path<String>) -> Response {
    let (body, kind) = if file == NAMES.css {
        (CSS, "text/css; charset=utf-8")
    } else if file == NAMES.js {
        (JS, "text/javascript; charset=utf-8")
    } else {
        return (StatusCode::NOT_FOUND, "no such asset\n").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        body,
    )
        .into_response()
}

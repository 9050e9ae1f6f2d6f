//! The admin console (`/admin/ui/`) and the user's own page (`/self/ui/`): static files
//! compiled into the binary (the process and the admin Lambda serve the same bytes), sent with
//! a strict Content-Security-Policy. They call the documented API as any client does; nothing
//! here reads or changes data.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::AdminError;
use crate::extract::ApiError;

/// Only this origin's own files run; no inline script or style, no framing, no plugins, no
/// `<base>` and no native form posts (every form is sent by script as JSON).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'; object-src 'none'";

/// Each file by name, with its media type.
const FILES: &[(&str, &str, &[u8])] = &[
    ("index.html", HTML, include_bytes!("../ui/index.html")),
    ("self.html", HTML, include_bytes!("../ui/self.html")),
    ("console.css", CSS, include_bytes!("../ui/console.css")),
    ("favicon.svg", SVG, include_bytes!("../ui/favicon.svg")),
    ("admin.js", JS, include_bytes!("../ui/admin.js")),
    ("self.js", JS, include_bytes!("../ui/self.js")),
    ("api.js", JS, include_bytes!("../ui/api.js")),
    ("dom.js", JS, include_bytes!("../ui/dom.js")),
    ("screen.js", JS, include_bytes!("../ui/screen.js")),
    ("domains.js", JS, include_bytes!("../ui/domains.js")),
    ("accounts.js", JS, include_bytes!("../ui/accounts.js")),
    ("integrated.js", JS, include_bytes!("../ui/integrated.js")),
    ("rules.js", JS, include_bytes!("../ui/rules.js")),
];
const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

fn file(name: &str) -> Result<Response, ApiError> {
    let (_, media_type, bytes) = FILES
        .iter()
        .find(|(known, _, _)| *known == name)
        .ok_or_else(|| AdminError::not_found("no such file of the console"))?;
    let mut response = (StatusCode::OK, *bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Small files, and a new binary may bring new ones: always asked for again.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

pub(crate) async fn console_page() -> Result<Response, ApiError> {
    file("index.html")
}

pub(crate) async fn self_page() -> Result<Response, ApiError> {
    file("self.html")
}

pub(crate) async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    file(&name)
}

/// `/admin/ui` and `/self/ui` to their folder, so that the pages' relative links resolve.
pub(crate) async fn console_folder() -> Redirect {
    Redirect::permanent("/admin/ui/")
}

pub(crate) async fn self_folder() -> Redirect {
    Redirect::permanent("/self/ui/")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file a page or module names is served: a module the console imports but this
    /// table leaves out would fail in the browser only.
    #[test]
    fn every_file_the_pages_name_is_served() {
        for (name, _, bytes) in FILES {
            let text = std::str::from_utf8(bytes).unwrap();
            for quoted in text.split(['"', '\'']).filter(|part| {
                part.starts_with("./") || part.ends_with(".js") || part.ends_with(".css")
            }) {
                let wanted = quoted.trim_start_matches("./");
                if wanted.contains(' ') || wanted.contains('/') || wanted.is_empty() {
                    continue;
                }
                assert!(
                    FILES.iter().any(|(known, _, _)| *known == wanted),
                    "{name} names {wanted}, which is not served"
                );
            }
        }
    }

    #[test]
    fn no_page_runs_inline_script_or_style() {
        for (name, _, bytes) in FILES.iter().filter(|(name, _, _)| name.ends_with(".html")) {
            let text = std::str::from_utf8(bytes).unwrap();
            assert!(!text.contains("<script>"), "{name} has an inline script");
            assert!(!text.contains("style="), "{name} has an inline style");
            let handler = text
                .split_whitespace()
                .any(|word| word.starts_with("on") && word.contains('='));
            assert!(!handler, "{name} has an inline handler");
        }
    }
}

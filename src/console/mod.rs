//! The web console: server-rendered, read-only HTML views of everything
//! ecrd holds, at `/_ecrd/console/` on the same port as both planes. A third
//! protocol adapter beside `api/` and `oci/`: it turns a URL into domain reads
//! (`ecr::overview` and the same queries DescribeImages, ListImageReferrers,
//! DescribeImageScanFindings and lifecycle previews answer from) and the
//! answers into HTML through compiled templates (`templates/console/`).
//!
//! Every view is a GET with its whole state in the query string, so any
//! page's URL can be pasted into a bug report. No script, no external
//! resource: the binary carries the templates, the stylesheet and the SVG
//! pictures (`svg`). Nothing here changes state; an action added later must
//! be a POST behind the operator guard in `server.rs`.
//!
//! Views: `/` registries; `registry?account&region[&prefix][&after]`
//! repositories; `repository?account&region&name[&after]` settings, policy
//! and a page of images; `lifecycle?account&region&name` the policy next to
//! what a run would do now and the image sizes over time;
//! `image?account&region&name&digest[&severity][&sort]` manifest, config,
//! layers, platforms, referrers, replication and findings; `uploads`;
//! `tasks`.

mod format;
mod svg;
mod views;

use std::sync::Arc;

use axum::extract::Query;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::ecr::error::{EcrError, ErrorKind};
use crate::ecr::names::{AccountId, Region, RepositoryName, Scope};
use crate::state::AppState;

/// Where the console is mounted; every link starts here.
pub const BASE: &str = "/_ecrd/console/";

/// The console's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/_ecrd/console",
            get(|| async { Redirect::permanent(BASE) }),
        )
        .route("/_ecrd/console/", get(views::overview))
        .route("/_ecrd/console/registry", get(views::registry))
        .route("/_ecrd/console/repository", get(views::repository))
        .route("/_ecrd/console/lifecycle", get(views::lifecycle))
        .route("/_ecrd/console/image", get(views::image))
        .route("/_ecrd/console/uploads", get(views::uploads))
        .route("/_ecrd/console/tasks", get(views::tasks))
}

/// Why a view could not be shown: the status and a sentence for the page.
#[derive(Debug)]
pub struct ViewError {
    status: StatusCode,
    title: &'static str,
    message: String,
}

impl ViewError {
    fn bad_request(message: impl Into<String>) -> Self {
        ViewError {
            status: StatusCode::BAD_REQUEST,
            title: "Bad request",
            message: message.into(),
        }
    }
}

impl From<EcrError> for ViewError {
    fn from(e: EcrError) -> Self {
        let (status, title) = match e.kind {
            ErrorKind::RepositoryNotFound | ErrorKind::ImageNotFound | ErrorKind::ScanNotFound => {
                (StatusCode::NOT_FOUND, "Not found")
            }
            ErrorKind::Server => (StatusCode::INTERNAL_SERVER_ERROR, "Server error"),
            _ => (StatusCode::BAD_REQUEST, "Bad request"),
        };
        ViewError {
            status,
            title,
            message: e.message,
        }
    }
}

impl IntoResponse for ViewError {
    fn into_response(self) -> Response {
        let page = views::ErrorPage {
            title: self.title,
            message: self.message,
        };
        let mut response = html(&page);
        *response.status_mut() = self.status;
        response
    }
}

/// Renders a page as `text/html`, never cached (the data changes under it).
fn html(page: &impl askama::Template) -> Response {
    match page.render() {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                // Nothing on these pages needs a script or a foreign origin.
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
                ),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            body,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the console could not render this page: {e}"),
        )
            .into_response(),
    }
}

/// Parses the registry a view addresses.
fn scope_of(account: &str, region: &str) -> Result<Scope, ViewError> {
    let account = AccountId::parse(account).map_err(ViewError::bad_request)?;
    let region = Region::parse(region).map_err(ViewError::bad_request)?;
    Ok(Scope::new(account, region))
}

/// Parses the repository a view addresses.
fn repository_of(name: &str) -> Result<RepositoryName, ViewError> {
    RepositoryName::parse(name)
        .map_err(|e| ViewError::bad_request(format!("repository name '{name}' {}", e.constraint)))
}

/// Runs a blocking domain read off the async workers (a view may read a
/// whole repository).
async fn blocking<T: Send + 'static>(
    app: &Arc<AppState>,
    read: impl FnOnce(&crate::ecr::Ecr) -> Result<T, ViewError> + Send + 'static,
) -> Result<T, ViewError> {
    let ecr = app.ecr.clone();
    tokio::task::spawn_blocking(move || read(&ecr))
        .await
        .map_err(|e| ViewError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title: "Server error",
            message: e.to_string(),
        })?
}

/// Query extraction that answers a console page, not axum's plain text.
type Q<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

fn query<T>(q: Q<T>) -> Result<T, ViewError> {
    q.map(|Query(v)| v)
        .map_err(|e| ViewError::bad_request(e.body_text()))
}

type Page = Result<Response, ViewError>;

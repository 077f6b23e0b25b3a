use super::*;
use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

async fn get(path: &str, if_none_match: Option<&str>) -> Response {
    let mut req = Request::get(path);
    if let Some(tag) = if_none_match {
        req = req.header(header::IF_NONE_MATCH, tag);
    }
    router()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

fn header_of(r: &Response, name: header::HeaderName) -> &str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn the_page_and_its_assets_come_with_their_types() {
    for (path, want) in [
        ("/", "text/html; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/js/main.js", "text/javascript; charset=utf-8"),
        ("/icon.svg", "image/svg+xml"),
    ] {
        let r = get(path, None).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(header_of(&r, header::CONTENT_TYPE), want, "{path}");
        assert_eq!(header_of(&r, header::CACHE_CONTROL), "no-cache", "{path}");
        assert!(header_of(&r, header::CONTENT_SECURITY_POLICY).contains("frame-ancestors 'none'"));
    }
    assert_eq!(
        get("/js/nope.js", None).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_matching_etag_gets_not_modified_and_a_stale_one_the_body() {
    let first = get("/style.css", None).await;
    let tag = header_of(&first, header::ETAG).to_string();
    assert!(tag.starts_with('"') && tag.len() == 18, "{tag}");
    let again = get("/style.css", Some(&tag)).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header_of(&again, header::ETAG), tag);
    let stale = get("/style.css", Some("\"0000000000000000\"")).await;
    assert_eq!(stale.status(), StatusCode::OK);
    let other = get("/", None).await;
    assert_ne!(
        header_of(&other, header::ETAG),
        tag,
        "each asset its own tag"
    );
}

#[test]
fn only_the_assets_pass_as_assets() {
    assert!(is_asset_path("/"));
    assert!(is_asset_path("/js/list.js"));
    assert!(!is_asset_path("/api/v2/torrents/info"));
    assert!(!is_asset_path("/transmission/rpc"));
    assert!(!is_asset_path("/js/"));
    assert!(!is_asset_path("/js/../api/v2/app/shutdown"));
}

/// Every file in `assets/` is served, and every module a script imports is one of them.
#[test]
fn every_asset_file_is_served_and_every_import_resolves() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let mut files = Vec::new();
    let mut todo = vec![root.clone()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap().to_str().unwrap();
        let served = if rel == "index.html" {
            "/".to_string()
        } else {
            format!("/{rel}")
        };
        assert!(
            is_asset_path(&served),
            "{rel} is in assets/ but not in ASSETS"
        );
        if rel.ends_with(".js") {
            let text = std::fs::read_to_string(file).unwrap();
            for line in text.lines() {
                let Some((_, tail)) = line.split_once(" from './") else {
                    continue;
                };
                let module = tail.split('\'').next().unwrap();
                assert!(
                    is_asset_path(&format!("/js/{module}")),
                    "{rel} imports ./{module}, which is not served"
                );
            }
        }
    }
    assert_eq!(
        files.len(),
        ASSETS.len(),
        "ASSETS lists a file that is not there"
    );
}

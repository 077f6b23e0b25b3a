//! The web UI's files behind the daemon's guard: reachable without a login (the login page
//! is one of them), the API still closed, foreign hosts still refused.

use crate::api::start_daemon;

#[tokio::test]
async fn with_a_password_the_ui_loads_without_a_login_and_the_api_stays_closed() {
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let d = start_daemon(state.path(), downloads.path()).await;
    d.api
        .ok(
            "app/setPreferences",
            &[("json", r#"{"web_ui_password":"correct horse"}"#)],
        )
        .await;
    let base = d.api.base.clone();
    let got = tokio::task::spawn_blocking(move || {
        let get = |path: &str, host: Option<&str>| {
            let mut req = ureq::get(&format!("{base}{path}"));
            if let Some(host) = host {
                req = req.set("Host", host);
            }
            match req.call() {
                Ok(r) => (r.status(), r.content_type().to_string()),
                Err(ureq::Error::Status(c, r)) => (c, r.content_type().to_string()),
                Err(e) => panic!("{path}: {e}"),
            }
        };
        [
            get("/", None),
            get("/js/main.js", None),
            get("/api/v2/torrents/info", None),
            get("/js/no-such-file.js", None),
            get("/", Some("evil.example:8080")),
        ]
    })
    .await
    .unwrap();
    assert_eq!(
        got.clone().map(|(code, _)| code),
        [200, 200, 403, 403, 401],
        "{got:?}"
    );
    assert_eq!(got[0].1, "text/html");
    assert_eq!(got[1].1, "text/javascript");
    d.daemon.request_shutdown();
    d.server.await.unwrap().unwrap();
    d.daemon.shutdown().await;
}

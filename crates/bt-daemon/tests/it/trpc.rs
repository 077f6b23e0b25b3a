//! The Transmission RPC at `/transmission/rpc`, driven with raw HTTP: the session-id
//! handshake, add, torrent-get, stop and start, limits, file choices, remove; and what one
//! façade changes shows in the other.

use std::time::{Duration, Instant};

use base64::Engine as _;
use bt_meta::Metainfo;
use serde_json::{json, Value as Json};

use crate::api::{keep_dialling, payload, seeder, start_daemon, torrent, write_files, Api};

/// A raw client of `/transmission/rpc`.
#[derive(Clone)]
struct Rpc {
    url: String,
    session_id: String,
    auth: Option<String>,
}

/// (status, session-id header, body).
fn post(
    url: &str,
    session_id: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, Option<String>, String) {
    let mut req = ureq::post(url).set("Content-Type", "application/json");
    if !session_id.is_empty() {
        req = req.set("X-Transmission-Session-Id", session_id);
    }
    if let Some(a) = auth {
        req = req.set("Authorization", a);
    }
    let read = |r: ureq::Response| {
        (
            r.status(),
            r.header("X-Transmission-Session-Id").map(String::from),
            r.into_string().unwrap(),
        )
    };
    match req.send_string(body) {
        Ok(r) => read(r),
        Err(ureq::Error::Status(_, r)) => read(r),
        Err(e) => panic!("{url}: {e}"),
    }
}

impl Rpc {
    fn new(api: &Api) -> Rpc {
        Rpc {
            url: format!("{}/transmission/rpc", api.base),
            session_id: String::new(),
            auth: None,
        }
    }

    async fn raw(&self, body: &str) -> (u16, Option<String>, String) {
        let (url, id, auth, body) = (
            self.url.clone(),
            self.session_id.clone(),
            self.auth.clone(),
            body.to_string(),
        );
        tokio::task::spawn_blocking(move || post(&url, &id, auth.as_deref(), &body))
            .await
            .unwrap()
    }

    /// Does the 409 handshake.
    async fn connect(&mut self) {
        let (code, id, _) = self.raw(r#"{"method":"session-get"}"#).await;
        assert_eq!(code, 409, "a request without the session id");
        self.session_id = id.expect("the 409 carries the id");
    }

    /// A call; the whole response.
    async fn call(&self, method: &str, arguments: Json) -> Json {
        let body = json!({"method": method, "arguments": arguments, "tag": 42}).to_string();
        let (code, _, text) = self.raw(&body).await;
        assert_eq!(code, 200, "{method}: {text}");
        let v: Json = serde_json::from_str(&text).unwrap();
        assert_eq!(v["tag"], 42, "the tag comes back");
        v
    }

    /// A call that must succeed; its arguments.
    async fn ok(&self, method: &str, arguments: Json) -> Json {
        let v = self.call(method, arguments).await;
        assert_eq!(v["result"], "success", "{method}: {v}");
        v["arguments"].clone()
    }

    async fn get(&self, id: u64, fields: &[&str]) -> Json {
        let v = self
            .ok("torrent-get", json!({"ids": [id], "fields": fields}))
            .await;
        v["torrents"][0].clone()
    }

    async fn wait(&self, id: u64, what: &str, secs: u64, done: impl Fn(&Json) -> bool) -> Json {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let fields = [
            "status",
            "leftUntilDone",
            "percentDone",
            "sizeWhenDone",
            "rateDownload",
        ];
        loop {
            let t = self.get(id, &fields).await;
            if done(&t) {
                return t;
            }
            assert!(Instant::now() < deadline, "not {what} after {secs} s: {t}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transmission_rpc_adds_lists_limits_stops_and_removes() {
    let seed_dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let f1 = payload(300_000, 4);
    let f2 = payload(123_457, 5);
    let files: &[(&str, &[u8])] = &[("a.bin", &f1), ("sub/b.bin", &f2)];
    let meta = torrent("pair", files, 16 * 1024);
    write_files(seed_dir.path(), "pair", files);
    let hash = Metainfo::from_bytes(&meta).unwrap().info_hash.unwrap();
    let (_seed, seeds) = seeder(seed_dir.path(), &[&meta]).await;

    let d = start_daemon(state.path(), downloads.path()).await;
    let mut rpc = Rpc::new(&d.api);

    // The handshake: 409 with the id, then the id is accepted, and stays the same.
    let (code, _, _) = {
        let mut wrong = rpc.clone();
        wrong.session_id = "stale".into();
        wrong.raw(r#"{"method":"session-get"}"#).await
    };
    assert_eq!(code, 409, "a wrong id is refused too");
    rpc.connect().await;
    let session = rpc.ok("session-get", json!({})).await;
    assert_eq!(session["session-id"], rpc.session_id.as_str());
    assert!(session["version"].as_str().unwrap().contains("bt"));
    assert_eq!(session["download-dir"], downloads.path().to_str().unwrap());

    // Malformed requests get a clear answer, never a hang-up.
    let (code, _, body) = rpc.raw("{not json").await;
    assert_eq!(code, 400);
    assert!(body.contains("malformed request"), "{body}");
    let v = rpc.call("no-such-method", json!({})).await;
    assert!(v["result"].as_str().unwrap().contains("not known"), "{v}");
    let v = rpc
        .call("torrent-get", json!({"ids": [true], "fields": ["id"]}))
        .await;
    assert!(v["result"].as_str().unwrap().contains("ids"), "{v}");

    // Add, stopped, with a label: torrent-added, then torrent-duplicate with the same id.
    let b64 = base64::engine::general_purpose::STANDARD.encode(&meta);
    let added = rpc
        .ok(
            "torrent-add",
            json!({"metainfo": b64, "paused": true, "labels": ["tv"]}),
        )
        .await;
    let id = added["torrent-added"]["id"].as_u64().unwrap();
    assert_eq!(added["torrent-added"]["hashString"], hash.to_hex());
    assert_eq!(added["torrent-added"]["name"], "pair");
    let again = rpc.ok("torrent-add", json!({"metainfo": b64})).await;
    assert_eq!(again["torrent-duplicate"]["id"], id);
    let bad = rpc
        .call("torrent-add", json!({"metainfo": "bm90IGEgdG9ycmVudA=="}))
        .await;
    assert_ne!(bad["result"], "success", "garbage is refused: {bad}");

    let t = rpc
        .get(
            id,
            &[
                "id",
                "name",
                "status",
                "hashString",
                "labels",
                "totalSize",
                "sizeWhenDone",
                "leftUntilDone",
                "eta",
                "rateDownload",
                "rateUpload",
                "uploadRatio",
                "files",
                "fileStats",
                "priorities",
                "wanted",
                "pieceCount",
                "pieceSize",
                "downloadDir",
            ],
        )
        .await;
    assert_eq!(t["status"], 0, "stopped: {t}");
    assert_eq!(t["labels"], json!(["tv"]));
    assert_eq!(t["totalSize"], 423_457);
    assert_eq!(t["leftUntilDone"], 423_457);
    assert_eq!(t["files"][1]["name"], "pair/sub/b.bin");
    assert_eq!(t["wanted"], json!([1, 1]));
    assert_eq!(t["pieceSize"], 16 * 1024);
    // The qBittorrent façade sees the same torrent.
    let q = d.api.info(&hash).await;
    assert_eq!(
        (q["state"].as_str(), q["tags"].as_str()),
        (Some("stoppedDL"), Some("tv"))
    );

    // A file unwanted through Transmission is skipped in qBittorrent's terms.
    rpc.ok("torrent-set", json!({"ids": [id], "files-unwanted": [1]}))
        .await;
    let qfiles = d
        .api
        .json("torrents/files", &[("hash", &hash.to_hex())])
        .await;
    assert_eq!(qfiles[1]["priority"], 0);
    let t = rpc.get(id, &["wanted", "sizeWhenDone"]).await;
    assert_eq!(
        (t["wanted"].clone(), t["sizeWhenDone"].clone()),
        (json!([1, 0]), json!(300_000))
    );
    // And wanted again, at high priority, seen through qBittorrent as 6.
    rpc.ok(
        "torrent-set",
        json!({"ids": [hash.to_hex()], "files-wanted": [1], "priority-high": [1]}),
    )
    .await;
    let qfiles = d
        .api
        .json("torrents/files", &[("hash", &hash.to_hex())])
        .await;
    assert_eq!(qfiles[1]["priority"], 6);
    assert_eq!(
        rpc.get(id, &["priorities"]).await["priorities"],
        json!([0, 1])
    );

    // Start: it downloads from the seeder and seeds.
    let _dial = keep_dialling(seeds[0].clone(), d.daemon.peer_addr());
    rpc.ok("torrent-start", json!({"ids": [id]})).await;
    let t = rpc.wait(id, "seeding", 30, |t| t["status"] == 6).await;
    assert_eq!(
        (t["leftUntilDone"].clone(), t["percentDone"].clone()),
        (json!(0), json!(1.0))
    );
    let list = rpc
        .ok("torrent-get", json!({"fields": ["id", "name", "status"]}))
        .await;
    assert_eq!(list["torrents"].as_array().unwrap().len(), 1, "no ids: all");
    let table = rpc
        .ok(
            "torrent-get",
            json!({"fields": ["id", "name"], "format": "table"}),
        )
        .await;
    assert_eq!(table["torrents"], json!([["id", "name"], [id, "pair"]]));

    // Limits: set through Transmission, read through qBittorrent, and back.
    rpc.ok(
        "torrent-set",
        json!({"ids": id, "downloadLimit": 100, "downloadLimited": true}),
    )
    .await;
    assert_eq!(d.api.info(&hash).await["dl_limit"], 100_000);
    d.api
        .ok(
            "torrents/setUploadLimit",
            &[("hashes", &hash.to_hex()), ("limit", "50000")],
        )
        .await;
    let t = rpc
        .get(id, &["uploadLimit", "uploadLimited", "downloadLimit"])
        .await;
    assert_eq!(
        t,
        json!({"uploadLimit": 50, "uploadLimited": true, "downloadLimit": 100})
    );
    rpc.ok(
        "session-set",
        json!({"speed-limit-down": 200, "speed-limit-down-enabled": true, "alt-speed-up": 30}),
    )
    .await;
    assert_eq!(d.api.ok("transfer/downloadLimit", &[]).await, "200000");
    let prefs = d.api.json("app/preferences", &[]).await;
    assert_eq!(prefs["alt_up_limit"], 30_000);
    let v = rpc
        .call("session-set", json!({"encryption": "required"}))
        .await;
    assert_ne!(v["result"], "success");

    // Stop through qBittorrent, seen in Transmission; start through Transmission, seen in
    // qBittorrent.
    d.api
        .ok("torrents/stop", &[("hashes", &hash.to_hex())])
        .await;
    assert_eq!(rpc.get(id, &["status"]).await["status"], 0);
    rpc.ok("torrent-start", json!({"ids": [id]})).await;
    d.api
        .wait_state(&hash, &["uploading", "stalledUP", "checkingUP"], 10)
        .await;
    rpc.ok("torrent-stop", json!({"ids": [id]})).await;
    d.api.wait_state(&hash, &["stoppedUP"], 10).await;

    let stats = rpc.ok("session-stats", json!({})).await;
    assert_eq!(stats["torrentCount"], 1);
    assert_eq!(stats["pausedTorrentCount"], 1);
    assert!(stats["current-stats"]["downloadedBytes"].as_u64().unwrap() >= 423_457);
    let free = rpc
        .ok("free-space", json!({"path": downloads.path()}))
        .await;
    assert!(free["size-bytes"].as_u64().unwrap() > 0);
    let v = rpc.call("port-test", json!({})).await;
    assert!(v["result"].as_str().unwrap().contains("cannot"), "{v}");
    rpc.ok("torrent-reannounce", json!({"ids": [id]})).await;

    // Tracker edits, seen by qBittorrent; a bad URL or id is refused.
    let tracker = "http://127.0.0.1:1/announce";
    rpc.ok("torrent-set", json!({"ids": [id], "trackerAdd": [tracker]}))
        .await;
    let t = rpc.get(id, &["trackers", "trackerStats"]).await;
    assert_eq!(t["trackers"][0]["announce"], tracker, "{t}");
    assert_eq!(t["trackerStats"][0]["host"], "127.0.0.1:1", "{t}");
    let qtrackers = d
        .api
        .json("torrents/trackers", &[("hash", &hash.to_hex())])
        .await;
    assert!(
        qtrackers
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["url"] == tracker),
        "{qtrackers}"
    );
    let v = rpc
        .call("torrent-set", json!({"ids": [id], "trackerRemove": [5]}))
        .await;
    assert_ne!(v["result"], "success");
    rpc.ok("torrent-set", json!({"ids": [id], "trackerRemove": [0]}))
        .await;
    assert_eq!(rpc.get(id, &["trackers"]).await["trackers"], json!([]));

    // A file renamed on disk through torrent-rename-path.
    let content = downloads.path().join("pair");
    let renamed = rpc
        .ok(
            "torrent-rename-path",
            json!({"ids": [id], "path": "pair/a.bin", "name": "c.bin"}),
        )
        .await;
    assert_eq!(renamed["name"], "c.bin");
    assert!(content.join("c.bin").exists() && !content.join("a.bin").exists());
    let t = rpc.get(id, &["files"]).await;
    assert_eq!(t["files"][0]["name"], "pair/c.bin");
    let qfiles = d
        .api
        .json("torrents/files", &[("hash", &hash.to_hex())])
        .await;
    assert_eq!(qfiles[0]["name"], "pair/c.bin");

    // Remove with its data: the files go, and recently-active reports the id removed.
    assert!(content.join("c.bin").exists());
    rpc.ok(
        "torrent-remove",
        json!({"ids": [id], "delete-local-data": true}),
    )
    .await;
    assert!(!content.join("c.bin").exists(), "data deleted");
    let recent = rpc
        .ok(
            "torrent-get",
            json!({"ids": "recently-active", "fields": ["id"]}),
        )
        .await;
    assert_eq!(recent["removed"], json!([id]));
    assert_eq!(rpc.get(id, &["id"]).await, Json::Null);
    let again = rpc
        .ok("torrent-add", json!({"metainfo": b64, "paused": true}))
        .await;
    assert_ne!(again["torrent-added"]["id"], id, "ids are not reused");
    d.stop().await;
}

#[tokio::test]
async fn a_password_needs_basic_auth_on_the_transmission_rpc() {
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let d = start_daemon(state.path(), downloads.path()).await;
    let mut rpc = Rpc::new(&d.api);
    // transmission-remote 3.00 posts to the path with a trailing slash.
    rpc.url.push('/');
    rpc.connect().await;
    d.api
        .ok(
            "app/setPreferences",
            &[(
                "json",
                r#"{"web_ui_username":"me","web_ui_password":"correct horse","bypass_local_auth":false}"#,
            )],
        )
        .await;
    let body = r#"{"method":"session-get"}"#;
    let (code, _, _) = rpc.raw(body).await;
    assert_eq!(code, 401, "no credentials");
    // "me:wrong"
    rpc.auth = Some("Basic bWU6d3Jvbmc=".into());
    let (code, _, _) = rpc.raw(body).await;
    assert_eq!(code, 401, "wrong password");
    // "me:correct horse"
    rpc.auth = Some("Basic bWU6Y29ycmVjdCBob3JzZQ==".into());
    rpc.ok("session-get", json!({})).await;
    // A foreign Host is refused before anything else, as on the qBittorrent API.
    let url = rpc.url.clone();
    let code = tokio::task::spawn_blocking(move || {
        match ureq::post(&url)
            .set("Host", "evil.example")
            .send_string("{}")
        {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(c, _)) => c,
            Err(e) => panic!("{e}"),
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 401);
    d.daemon.request_shutdown();
    d.server.await.unwrap().unwrap();
    d.daemon.shutdown().await;
}

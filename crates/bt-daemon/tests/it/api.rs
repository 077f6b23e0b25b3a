//! Add by upload and by magnet, categories and tags, stop and start, `sync/maindata`
//! deltas, a restart that keeps everything, and delete with files.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bt_bencode::{Dict, Value};
use bt_daemon::{Daemon, DaemonConfig, Settings};
use bt_engine::{AddTorrentParams, Session, SessionConfig, StorageKind, TorrentHandle};
use bt_meta::{InfoHash, Metainfo};
use serde_json::Value as Json;
use sha1::{Digest, Sha1};

pub(crate) fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[usize::from(seed) % 4] ^ seed)
        .collect()
}

fn bytes(b: &[u8]) -> Value<'static> {
    Value::Bytes(Cow::Owned(b.to_vec()))
}

/// A torrent of `files` (a single file when one entry has an empty path).
pub(crate) fn torrent(name: &str, files: &[(&str, &[u8])], piece_len: u32) -> Vec<u8> {
    let stream: Vec<u8> = files.iter().flat_map(|(_, d)| d.iter().copied()).collect();
    let pieces: Vec<u8> = stream
        .chunks(piece_len as usize)
        .flat_map(|c| <[u8; 20]>::from(Sha1::digest(c)))
        .collect();
    let mut info = Dict::new();
    if files.len() == 1 && files[0].0.is_empty() {
        info.insert(&b"length"[..], Value::Int(files[0].1.len() as i64));
    } else {
        let list = files
            .iter()
            .map(|(path, data)| {
                let mut f = Dict::new();
                f.insert(&b"length"[..], Value::Int(data.len() as i64));
                f.insert(
                    &b"path"[..],
                    Value::List(path.split('/').map(|p| bytes(p.as_bytes())).collect()),
                );
                Value::Dict(f)
            })
            .collect();
        info.insert(&b"files"[..], Value::List(list));
    }
    info.insert(&b"name"[..], bytes(name.as_bytes()));
    info.insert(&b"piece length"[..], Value::Int(i64::from(piece_len)));
    info.insert(&b"pieces"[..], bytes(&pieces));
    let mut root = Dict::new();
    root.insert(&b"info"[..], Value::Dict(info));
    Value::Dict(root).encode()
}

pub(crate) fn write_files(dir: &Path, name: &str, files: &[(&str, &[u8])]) {
    for (path, data) in files {
        let full = if path.is_empty() {
            dir.join(name)
        } else {
            dir.join(name).join(path)
        };
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, data).unwrap();
    }
}

/// A blocking client of the daemon's API.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) base: String,
}

impl Api {
    pub(crate) async fn call(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let url = format!("{}/api/v2/{path}", self.base);
        let form: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tokio::task::spawn_blocking(move || {
            let pairs: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            match ureq::post(&url).send_form(&pairs) {
                Ok(r) => (r.status(), r.into_string().unwrap()),
                Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
                Err(e) => panic!("{url}: {e}"),
            }
        })
        .await
        .unwrap()
    }

    pub(crate) async fn ok(&self, path: &str, form: &[(&str, &str)]) -> String {
        let (code, body) = self.call(path, form).await;
        assert_eq!(code, 200, "{path}: {body}");
        body
    }

    pub(crate) async fn json(&self, path: &str, form: &[(&str, &str)]) -> Json {
        serde_json::from_str(&self.ok(path, form).await).unwrap()
    }

    /// `torrents/add` with `.torrent` uploads, as multipart.
    pub(crate) async fn upload(&self, torrent: &[u8], fields: &[(&str, &str)]) -> (u16, String) {
        let boundary = "----bt-test-boundary";
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"torrents\"; filename=\"x.torrent\"\r\nContent-Type: application/x-bittorrent\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(torrent);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let url = format!("{}/api/v2/torrents/add", self.base);
        tokio::task::spawn_blocking(move || {
            match ureq::post(&url)
                .set(
                    "Content-Type",
                    &format!("multipart/form-data; boundary={boundary}"),
                )
                .send_bytes(&body)
            {
                Ok(r) => (r.status(), r.into_string().unwrap()),
                Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
                Err(e) => panic!("{url}: {e}"),
            }
        })
        .await
        .unwrap()
    }

    pub(crate) async fn info(&self, hash: &InfoHash) -> Json {
        let list = self
            .json("torrents/info", &[("hashes", &hash.to_hex())])
            .await;
        list.as_array()
            .and_then(|a| a.first())
            .cloned()
            .unwrap_or(Json::Null)
    }

    /// Waits until the torrent's state is one of `states`.
    pub(crate) async fn wait_state(&self, hash: &InfoHash, states: &[&str], secs: u64) -> Json {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let t = self.info(hash).await;
            if states.iter().any(|s| t["state"] == *s) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "not {states:?} after {secs} s: {t}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub(crate) struct Running {
    pub(crate) daemon: Daemon,
    pub(crate) api: Api,
    pub(crate) server: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub(crate) async fn start_daemon(state: &Path, downloads: &Path) -> Running {
    let settings = Settings {
        save_path: downloads.to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        api: "127.0.0.1:0".parse().unwrap(),
        dht: false,
        ..Settings::default()
    };
    let daemon = Daemon::start(DaemonConfig {
        state_dir: state.to_owned(),
        settings,
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(bt_daemon::qbt::serve(daemon.clone(), listener));
    Running {
        daemon,
        api: Api {
            base: format!("http://{addr}"),
        },
        server,
    }
}

impl Running {
    pub(crate) async fn stop(self) {
        self.daemon.request_shutdown();
        self.server.await.unwrap().unwrap();
        self.daemon.shutdown().await;
    }
}

pub(crate) async fn seeder(dir: &Path, metas: &[&[u8]]) -> (Session, Vec<TorrentHandle>) {
    let session = Session::new(SessionConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        announce: None,
        ..SessionConfig::default()
    })
    .await
    .unwrap();
    let mut handles = Vec::new();
    for m in metas {
        let meta = Metainfo::from_bytes(m).unwrap();
        let mut p = AddTorrentParams::new(meta, dir);
        p.storage = StorageKind::ExistingFiles;
        let h = session.add_torrent(p).await.unwrap();
        h.wait_complete().await.unwrap();
        handles.push(h);
    }
    (session, handles)
}

/// Keeps the seeder dialling `to` until `done`.
pub(crate) fn keep_dialling(handle: TorrentHandle, to: SocketAddr) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let _ = handle.add_peers(vec![to]).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_party_client_adds_watches_restarts_and_deletes() {
    let seed_dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let movies = tempfile::tempdir().unwrap();

    let single = payload(700_000, 1);
    let a = torrent("single.bin", &[("", &single)], 32 * 1024);
    write_files(seed_dir.path(), "single.bin", &[("", &single)]);
    let f1 = payload(300_000, 2);
    let f2 = payload(123_457, 3);
    let multi_files: &[(&str, &[u8])] = &[("x/one.bin", &f1), ("two.bin", &f2)];
    let b = torrent("multi", multi_files, 16 * 1024);
    write_files(seed_dir.path(), "multi", multi_files);
    let hash_a = Metainfo::from_bytes(&a).unwrap().info_hash.unwrap();
    let hash_b = Metainfo::from_bytes(&b).unwrap().info_hash.unwrap();
    let (_seed, seeds) = seeder(seed_dir.path(), &[&a, &b]).await;

    let d = start_daemon(state.path(), downloads.path()).await;
    let api = d.api.clone();
    assert_eq!(
        api.ok("auth/login", &[("username", "admin"), ("password", "x")])
            .await,
        "Ok."
    );
    assert_eq!(api.ok("app/webapiVersion", &[]).await, "2.11.2");
    let sync0 = api.json("sync/maindata", &[("rid", "0")]).await;
    assert_eq!(sync0["full_update"], true);

    // A category with its own folder; a torrent uploaded into it, stopped.
    let movies_path = movies.path().to_str().unwrap();
    api.ok(
        "torrents/createCategory",
        &[("category", "movies"), ("savePath", movies_path)],
    )
    .await;
    let (code, _) = api
        .call("torrents/createCategory", &[("category", "../x")])
        .await;
    assert_eq!(code, 409, "a category name that climbs out is refused");
    let (code, body) = api
        .upload(
            &a,
            &[
                ("category", "movies"),
                ("stopped", "true"),
                ("tags", "one,two"),
            ],
        )
        .await;
    assert_eq!((code, body.as_str()), (200, "Ok."));
    let t = api.wait_state(&hash_a, &["stoppedDL"], 10).await;
    assert_eq!(t["category"], "movies");
    assert_eq!(t["save_path"], movies_path);
    assert_eq!(t["tags"], "one, two");
    assert_eq!(t["size"], 700_000);

    // The same torrent again is not a second torrent; garbage is refused with 415.
    let (code, body) = api.upload(&a, &[]).await;
    assert_eq!((code, body.as_str()), (200, "Fails."));
    let (code, body) = api.upload(b"d4:infoi3ee", &[]).await;
    assert_eq!(code, 415, "{body}");

    // A magnet link (the seeder named in x.pe), started.
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&dn=multi&x.pe={}",
        hash_b.to_hex(),
        _seed.local_addr()
    );
    api.ok("torrents/add", &[("urls", &magnet), ("tags", "two")])
        .await;
    let t = api
        .wait_state(&hash_b, &["uploading", "stalledUP"], 30)
        .await;
    assert_eq!(t["progress"], 1.0);
    assert_eq!(t["name"], "multi");
    assert_eq!(
        std::fs::read(downloads.path().join("multi/x/one.bin")).unwrap(),
        f1
    );
    assert_eq!(
        std::fs::read(downloads.path().join("multi/two.bin")).unwrap(),
        f2
    );

    // Start the stopped one; the seeder dials the daemon.
    let dial = keep_dialling(seeds[0].clone(), d.daemon.peer_addr());
    api.ok("torrents/start", &[("hashes", &hash_a.to_hex())])
        .await;
    let t = api
        .wait_state(&hash_a, &["uploading", "stalledUP"], 30)
        .await;
    dial.abort();
    assert!(t["completion_on"].as_i64().unwrap() > 0);
    assert_eq!(
        std::fs::read(movies.path().join("single.bin")).unwrap(),
        single
    );

    // A delta from the first full answer carries the two torrents and the category.
    let delta = api
        .json("sync/maindata", &[("rid", &sync0["rid"].to_string())])
        .await;
    assert_eq!(delta.get("full_update"), None, "{delta}");
    assert!(delta["torrents"][hash_a.to_hex()]["name"].is_string());
    assert_eq!(delta["categories"]["movies"]["savePath"], movies_path);
    let rid = delta["rid"].to_string();
    let quiet = api.json("sync/maindata", &[("rid", &rid)]).await;
    assert!(
        quiet.get("categories").is_none() && quiet.get("tags").is_none(),
        "{quiet}"
    );

    // Filters.
    let tagged = api.json("torrents/info", &[("tag", "two")]).await;
    assert_eq!(tagged.as_array().unwrap().len(), 2);
    let in_movies = api.json("torrents/info", &[("category", "movies")]).await;
    assert_eq!(in_movies.as_array().unwrap().len(), 1);
    let files = api
        .json("torrents/files", &[("hash", &hash_b.to_hex())])
        .await;
    assert_eq!(files[0]["name"], "multi/x/one.bin");
    assert_eq!(files[1]["size"], 123_457);

    // Stop one, restart the daemon: everything comes back as it was, and nothing verified
    // is fetched again.
    api.ok("torrents/stop", &[("hashes", &hash_b.to_hex())])
        .await;
    api.wait_state(&hash_b, &["stoppedUP"], 10).await;
    let before = api.info(&hash_a).await;
    d.stop().await;

    let d = start_daemon(state.path(), downloads.path()).await;
    let api = d.api.clone();
    let t = api
        .wait_state(&hash_a, &["uploading", "stalledUP"], 30)
        .await;
    for key in [
        "category",
        "tags",
        "save_path",
        "added_on",
        "completion_on",
        "downloaded",
    ] {
        assert_eq!(t[key], before[key], "{key} after a restart");
    }
    api.wait_state(&hash_b, &["stoppedUP"], 10).await;
    let cats = api.json("torrents/categories", &[]).await;
    assert_eq!(cats["movies"]["savePath"], movies_path);

    // Delete with files: the data goes, the other torrent stays.
    api.ok(
        "torrents/delete",
        &[("hashes", &hash_b.to_hex()), ("deleteFiles", "true")],
    )
    .await;
    assert!(!downloads.path().join("multi").exists());
    assert!(movies.path().join("single.bin").exists());
    let all = api.json("torrents/info", &[]).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    d.stop().await;
}

#[tokio::test]
async fn requests_from_other_sites_are_refused() {
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let d = start_daemon(state.path(), downloads.path()).await;
    let url = format!("{}/api/v2/app/shutdown", d.api.base);
    let (forged, rebound) = tokio::task::spawn_blocking(move || {
        let code = |r: Result<ureq::Response, ureq::Error>| match r {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(c, _)) => c,
            Err(e) => panic!("{e}"),
        };
        (
            code(ureq::post(&url).set("Origin", "http://evil.example").call()),
            code(ureq::post(&url).set("Host", "evil.example:8080").call()),
        )
    })
    .await
    .unwrap();
    assert_eq!((forged, rebound), (401, 401));
    let (code, _) = d.api.call("app/version", &[]).await;
    assert_eq!(code, 200, "still running");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_files_queueing_share_limits_and_the_watch_folder() {
    let seed_dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let watch = tempfile::tempdir().unwrap();

    // Files of 64 KiB in 16 KiB pieces: no piece is shared between two files.
    let (f1, f2, f3) = (payload(65_536, 4), payload(65_536, 5), payload(65_536, 6));
    let files: &[(&str, &[u8])] = &[("a.bin", &f1), ("b.bin", &f2), ("c.bin", &f3)];
    let multi = torrent("three", files, 16 * 1024);
    write_files(seed_dir.path(), "three", files);
    let hash = Metainfo::from_bytes(&multi).unwrap().info_hash.unwrap();
    let singles: Vec<Vec<u8>> = (0..4)
        .map(|i| {
            let data = payload(40_000 + i, 10 + i as u8);
            let name = format!("q{i}.bin");
            write_files(seed_dir.path(), &name, &[("", &data)]);
            torrent(&name, &[("", &data)], 16 * 1024)
        })
        .collect();
    let mut all: Vec<&[u8]> = vec![&multi];
    all.extend(singles.iter().map(Vec::as_slice));
    let (seed, _handles) = seeder(seed_dir.path(), &all).await;

    let d = start_daemon(state.path(), downloads.path()).await;
    let api = d.api.clone();

    // Skip b.bin before starting: it is never written, the rest completes.
    api.upload(&multi, &[("stopped", "true")]).await;
    api.wait_state(&hash, &["stoppedDL"], 10).await;
    api.ok(
        "torrents/filePrio",
        &[("hash", &hash.to_hex()), ("id", "1"), ("priority", "0")],
    )
    .await;
    let (code, _) = api
        .call(
            "torrents/filePrio",
            &[("hash", &hash.to_hex()), ("id", "1"), ("priority", "3")],
        )
        .await;
    assert_eq!(code, 400, "3 is not a qBittorrent priority");
    api.ok("torrents/start", &[("hashes", &hash.to_hex())])
        .await;
    api.ok(
        "torrents/addPeers",
        &[
            ("hashes", &hash.to_hex()),
            ("peers", &seed.local_addr().to_string()),
        ],
    )
    .await;
    let dial = keep_dialling(_handles[0].clone(), d.daemon.peer_addr());
    let t = api.wait_state(&hash, &["uploading", "stalledUP"], 30).await;
    dial.abort();
    assert_eq!(t["size"], 2 * 65_536, "the wanted size");
    assert_eq!(t["total_size"], 3 * 65_536);
    assert_eq!(
        std::fs::read(downloads.path().join("three/a.bin")).unwrap(),
        f1
    );
    assert_eq!(
        std::fs::read(downloads.path().join("three/c.bin")).unwrap(),
        f3
    );
    let b = downloads.path().join("three/b.bin");
    assert!(
        !b.exists() || std::fs::read(&b).unwrap().iter().all(|x| *x == 0),
        "the skipped file holds none of its data"
    );
    let files = api
        .json("torrents/files", &[("hash", &hash.to_hex())])
        .await;
    assert_eq!(files[1]["priority"], 0);
    assert_eq!(files[1]["progress"], 0.0);
    assert_eq!(files[2]["progress"], 1.0);

    // A share ratio of 0 is reached at once: the torrent stops.
    api.ok(
        "torrents/setShareLimits",
        &[
            ("hashes", &hash.to_hex()),
            ("ratioLimit", "0"),
            ("seedingTimeLimit", "-1"),
        ],
    )
    .await;
    api.wait_state(&hash, &["stoppedUP"], 10).await;

    // Queueing: four downloads with two allowed: two wait as queuedDL.
    api.ok(
        "app/setPreferences",
        &[(
            "json",
            r#"{"queueing_enabled":true,"max_active_downloads":2,"max_active_torrents":5}"#,
        )],
    )
    .await;
    let mut hashes = Vec::new();
    for t in &singles {
        api.upload(t, &[]).await;
        hashes.push(Metainfo::from_bytes(t).unwrap().info_hash.unwrap());
    }
    let states = |list: &Json| -> Vec<String> {
        let mut v: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["hash"] != hash.to_hex())
            .map(|t| t["state"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let list = api.json("torrents/info", &[]).await;
    let s = states(&list);
    assert_eq!(s.iter().filter(|s| *s == "queuedDL").count(), 2, "{s:?}");
    // Moving the last one to the top lets it run in place of another.
    api.ok("torrents/topPrio", &[("hashes", &hashes[3].to_hex())])
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = api.info(&hashes[3]).await;
    assert_ne!(t["state"], "queuedDL", "{t}");
    api.ok(
        "app/setPreferences",
        &[("json", r#"{"queueing_enabled":false}"#)],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = states(&api.json("torrents/info", &[]).await);
    assert!(!s.iter().any(|s| s == "queuedDL"), "{s:?}");

    // The watch folder: a torrent in a sub-folder is added with that category.
    api.ok(
        "app/setPreferences",
        &[(
            "json",
            &format!(r#"{{"scan_dirs":{{"{}":1}}}}"#, watch.path().display()),
        )],
    )
    .await;
    std::fs::create_dir_all(watch.path().join("tv")).unwrap();
    let dropped = torrent("dropped.bin", &[("", b"watch me")], 16 * 1024);
    let dropped_hash = Metainfo::from_bytes(&dropped).unwrap().info_hash.unwrap();
    std::fs::write(watch.path().join("tv/d.torrent"), &dropped).unwrap();
    std::fs::write(watch.path().join("bad.torrent"), b"not a torrent").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !watch.path().join("tv/d.torrent.added").exists() {
        assert!(
            Instant::now() < deadline,
            "the watch folder did not pick it up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(api.info(&dropped_hash).await["category"], "tv");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !watch.path().join("bad.torrent.invalid").exists() {
        assert!(Instant::now() < deadline, "the bad file was not set aside");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    d.stop().await;
}

#[tokio::test]
async fn a_password_closes_the_api_to_everyone_without_a_login() {
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let d = start_daemon(state.path(), downloads.path()).await;
    let api = d.api.clone();
    let (code, _) = api
        .call(
            "app/setPreferences",
            &[("json", r#"{"web_ui_password":"short"}"#)],
        )
        .await;
    assert_eq!(code, 400, "too short");
    api.ok(
        "app/setPreferences",
        &[(
            "json",
            r#"{"web_ui_username":"me","web_ui_password":"correct horse"}"#,
        )],
    )
    .await;
    let stored = std::fs::read_to_string(state.path().join("settings.json")).unwrap();
    assert!(stored.contains("@ByteArray("), "hashed: {stored}");
    assert!(!stored.contains("correct horse"), "never in the clear");

    let base = api.base.clone();
    let results = tokio::task::spawn_blocking(move || {
        let status = |r: Result<ureq::Response, ureq::Error>| match r {
            Ok(r) => (
                r.status(),
                r.header("set-cookie").map(String::from),
                r.into_string().unwrap(),
            ),
            Err(ureq::Error::Status(c, r)) => (c, None, r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        };
        let url = |p: &str| format!("{base}/api/v2/{p}");
        let anonymous = status(ureq::get(&url("torrents/info")).call());
        let wrong = status(
            ureq::post(&url("auth/login")).send_form(&[("username", "me"), ("password", "nope")]),
        );
        let right = status(
            ureq::post(&url("auth/login"))
                .send_form(&[("username", "me"), ("password", "correct horse")]),
        );
        let cookie = right
            .1
            .clone()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let inside = status(
            ureq::get(&url("torrents/info"))
                .set("Cookie", &cookie)
                .call(),
        );
        let forged = status(
            ureq::get(&url("torrents/info"))
                .set("Cookie", "SID=forged")
                .call(),
        );
        status(
            ureq::post(&url("auth/logout"))
                .set("Cookie", &cookie)
                .call(),
        );
        let after = status(
            ureq::get(&url("torrents/info"))
                .set("Cookie", &cookie)
                .call(),
        );
        (anonymous.0, wrong.2, right.2, inside.0, forged.0, after.0)
    })
    .await
    .unwrap();
    assert_eq!(results, (403, "Fails.".into(), "Ok.".into(), 200, 403, 403));
    // The shutdown through the API needs the login too; stop from inside.
    d.daemon.request_shutdown();
    d.server.await.unwrap().unwrap();
    d.daemon.shutdown().await;
}

#[test]
fn an_exposed_api_needs_a_password() {
    let mut s = Settings::default();
    let lan: SocketAddr = "192.168.1.5:8080".parse().unwrap();
    let err = bt_daemon::qbt::may_listen(lan, &s).unwrap_err().to_string();
    assert!(err.contains("no password"), "{err}");
    assert!(bt_daemon::qbt::may_listen("127.0.0.1:8080".parse().unwrap(), &s).is_ok());
    s.web_ui_password_pbkdf2 = Some(bt_daemon::credentials::hash_password("secret!"));
    assert!(bt_daemon::qbt::may_listen(lan, &s).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speed_limits_reach_the_engine_and_the_alternative_pair_switches() {
    let seed_dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let data = payload(3 << 20, 9);
    let t = torrent("limited.bin", &[("", &data)], 64 * 1024);
    write_files(seed_dir.path(), "limited.bin", &[("", &data)]);
    let hash = Metainfo::from_bytes(&t).unwrap().info_hash.unwrap();
    let (seed, handles) = seeder(seed_dir.path(), &[&t]).await;

    let d = start_daemon(state.path(), downloads.path()).await;
    let api = d.api.clone();
    api.ok("transfer/setDownloadLimit", &[("limit", "1048576")])
        .await;
    assert_eq!(api.ok("transfer/downloadLimit", &[]).await, "1048576");
    assert_eq!(d.daemon.session().rate_limits(), (1 << 20, 0));
    api.ok(
        "app/setPreferences",
        &[("json", r#"{"alt_dl_limit":4096,"alt_up_limit":8192}"#)],
    )
    .await;
    api.ok("transfer/toggleSpeedLimitsMode", &[]).await;
    assert_eq!(api.ok("transfer/speedLimitsMode", &[]).await, "1");
    assert_eq!(d.daemon.session().rate_limits(), (4096, 8192));
    let info = api.json("transfer/info", &[]).await;
    assert_eq!(info["dl_rate_limit"], 4096);
    api.ok("transfer/toggleSpeedLimitsMode", &[]).await;
    assert_eq!(d.daemon.session().rate_limits(), (1 << 20, 0));

    // The download takes as long as the limit says (3 MiB at 1 MiB/s).
    let started = Instant::now();
    api.upload(&t, &[]).await;
    let dial = keep_dialling(handles[0].clone(), d.daemon.peer_addr());
    api.ok(
        "torrents/addPeers",
        &[
            ("hashes", &hash.to_hex()),
            ("peers", &seed.local_addr().to_string()),
        ],
    )
    .await;
    // While it downloads, the seeder shows among its peers, by client name.
    let deadline = Instant::now() + Duration::from_secs(3);
    let peer = loop {
        let peers = api
            .json(
                "sync/torrentPeers",
                &[("hash", &hash.to_hex()), ("rid", "0")],
            )
            .await;
        if let Some((_, p)) = peers["peers"].as_object().and_then(|m| m.iter().next()) {
            break p.clone();
        }
        assert!(Instant::now() < deadline, "no peer listed: {peers}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        peer["client"].as_str().unwrap().starts_with("bt "),
        "{peer}"
    );
    assert_eq!(peer["ip"], "127.0.0.1");
    api.wait_state(&hash, &["uploading", "stalledUP"], 30).await;
    dial.abort();
    let secs = started.elapsed().as_secs_f64();
    // At least 2 s: the bucket may hold a quarter second of tokens at the start, and a
    // read of up to 256 KiB is paid for after it arrives. Unlimited, it takes ~0.1 s.
    assert!(secs >= 2.0, "3 MiB under a 1 MiB/s limit took {secs:.2} s");

    // A torrent's own limit reaches its engine torrent, and survives in the API.
    api.ok(
        "torrents/setUploadLimit",
        &[("hashes", &hash.to_hex()), ("limit", "65536")],
    )
    .await;
    let limits = api
        .json("torrents/uploadLimit", &[("hashes", &hash.to_hex())])
        .await;
    assert_eq!(limits[hash.to_hex()], 65536);
    let handle = d.daemon.session().torrent(&hash).unwrap();
    assert_eq!(handle.rate_limits(), (0, 65536));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_location_moves_the_data_and_the_torrent_seeds_from_there() {
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let f1 = payload(100_000, 21);
    let files: &[(&str, &[u8])] = &[("d/one.bin", &f1), ("two.bin", b"two")];
    let t = torrent("moved", files, 16 * 1024);
    let hash = Metainfo::from_bytes(&t).unwrap().info_hash.unwrap();
    // The data is already in the download folder: the torrent checks it and seeds.
    write_files(downloads.path(), "moved", files);
    let d = start_daemon(state.path(), downloads.path()).await;
    let api = d.api.clone();
    api.upload(&t, &[]).await;
    api.wait_state(&hash, &["stalledUP", "uploading"], 20).await;
    let states = api
        .json("torrents/pieceStates", &[("hash", &hash.to_hex())])
        .await;
    assert_eq!(states.as_array().unwrap().len(), 7);
    assert!(
        states.as_array().unwrap().iter().all(|s| *s == 2),
        "{states}"
    );
    let hashes = api
        .json("torrents/pieceHashes", &[("hash", &hash.to_hex())])
        .await;
    assert_eq!(hashes[0].as_str().unwrap().len(), 40);

    let target = elsewhere.path().join("archive");
    let (code, _) = api
        .call(
            "torrents/setLocation",
            &[("hashes", &hash.to_hex()), ("location", "")],
        )
        .await;
    assert_eq!(code, 400);
    api.ok(
        "torrents/setLocation",
        &[
            ("hashes", &hash.to_hex()),
            ("location", target.to_str().unwrap()),
        ],
    )
    .await;
    let t = api.wait_state(&hash, &["stalledUP", "uploading"], 20).await;
    assert_eq!(t["save_path"], target.to_str().unwrap());
    assert_eq!(std::fs::read(target.join("moved/d/one.bin")).unwrap(), f1);
    assert!(
        !downloads.path().join("moved").exists(),
        "nothing left behind"
    );
    assert!(
        target
            .join(".bt")
            .join(format!("{}.resume", hash.to_hex()))
            .exists(),
        "the resume state moved too"
    );
    api.ok(
        "torrents/rename",
        &[("hash", &hash.to_hex()), ("name", "Renamed")],
    )
    .await;
    assert_eq!(api.info(&hash).await["name"], "Renamed");
    d.stop().await;
}

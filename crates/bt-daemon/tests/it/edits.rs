//! Edits after adding: skip the check, tracker lists, file renames, automatic management,
//! banned addresses; each survives a restart.

use bt_meta::Metainfo;
use serde_json::Value as Json;

use crate::api::{payload, start_daemon, torrent, write_files};

fn tracker_urls(list: &Json) -> Vec<(String, i64)> {
    list.as_array()
        .unwrap()
        .iter()
        .filter(|t| !t["url"].as_str().unwrap().starts_with("**"))
        .map(|t| {
            (
                t["url"].as_str().unwrap().to_string(),
                t["tier"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_check_trackers_renames_auto_management_and_bans_hold_across_a_restart() {
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let one = payload(40_000, 3);
    let files: &[(&str, &[u8])] = &[("d/one.bin", &one), ("two.bin", b"two")];
    let t = torrent("edited", files, 16 * 1024);
    let hash = Metainfo::from_bytes(&t).unwrap().info_hash.unwrap();
    let h = hash.to_hex();
    // Data of the right sizes but wrong bytes: only a skipped check calls it complete.
    let junk = vec![0u8; one.len()];
    write_files(
        downloads.path(),
        "edited",
        &[("d/one.bin", &junk), ("two.bin", b"xxx")],
    );
    let d = start_daemon(state.path(), downloads.path()).await;
    let api = d.api.clone();
    let (code, body) = api.upload(&t, &[("skip_checking", "true")]).await;
    assert_eq!(code, 200, "{body}");
    let info = api.wait_state(&hash, &["stalledUP", "uploading"], 20).await;
    assert_eq!(info["progress"], 1.0, "{info}");

    // Trackers: added each as a tier, edited in place, removed; bad edits refused.
    api.ok(
        "torrents/addTrackers",
        &[
            ("hash", &h),
            (
                "urls",
                "http://127.0.0.1:9/announce\nudp://127.0.0.1:9\nnot a url",
            ),
        ],
    )
    .await;
    let list = api.json("torrents/trackers", &[("hash", &h)]).await;
    assert_eq!(
        tracker_urls(&list),
        [
            ("http://127.0.0.1:9/announce".to_string(), 0),
            ("udp://127.0.0.1:9".to_string(), 1)
        ]
    );
    let edit = |orig: &'static str, new: &'static str| {
        let api = api.clone();
        let h = h.clone();
        async move {
            api.call(
                "torrents/editTracker",
                &[("hash", &h), ("origUrl", orig), ("newUrl", new)],
            )
            .await
            .0
        }
    };
    assert_eq!(edit("udp://127.0.0.1:9", "udp://127.0.0.1:10").await, 200);
    assert_eq!(edit("udp://nowhere:1", "udp://127.0.0.1:11").await, 409);
    assert_eq!(
        edit("udp://127.0.0.1:10", "http://127.0.0.1:9/announce").await,
        409
    );
    assert_eq!(edit("udp://127.0.0.1:10", "gopher://x").await, 400);
    api.ok(
        "torrents/removeTrackers",
        &[("hash", &h), ("urls", "http://127.0.0.1:9/announce")],
    )
    .await;
    let (code, _) = api
        .call(
            "torrents/removeTrackers",
            &[("hash", &h), ("urls", "http://absent/announce")],
        )
        .await;
    assert_eq!(code, 409);
    assert_eq!(
        api.info(&hash).await["trackers_count"],
        1,
        "the list view counts the edited list"
    );
    api.ok("torrents/reannounce", &[("hashes", &h)]).await;

    // A file rename moves the file; paths that would leave the folder or collide are
    // refused.
    api.ok(
        "torrents/renameFile",
        &[
            ("hash", &h),
            ("oldPath", "edited/two.bin"),
            ("newPath", "edited/sub/2.bin"),
        ],
    )
    .await;
    assert_eq!(
        std::fs::read(downloads.path().join("edited/sub/2.bin")).unwrap(),
        b"xxx"
    );
    assert!(!downloads.path().join("edited/two.bin").exists());
    for bad in [
        "../../escape.bin",
        "/etc/x",
        "edited/d/one.bin",
        "edited/./x",
        "",
    ] {
        let (code, body) = api
            .call(
                "torrents/renameFile",
                &[
                    ("hash", &h),
                    ("oldPath", "edited/sub/2.bin"),
                    ("newPath", bad),
                ],
            )
            .await;
        assert_eq!(code, 409, "{bad:?}: {body}");
    }
    let names: Vec<String> = api
        .json("torrents/files", &[("hash", &h)])
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["edited/d/one.bin", "edited/sub/2.bin"]);
    api.wait_state(&hash, &["stalledUP", "uploading"], 20).await;

    // Automatic management: the save path follows the category, and the data moves.
    let cat_path = elsewhere.path().join("cat");
    api.ok(
        "torrents/createCategory",
        &[
            ("category", "cat"),
            ("savePath", cat_path.to_str().unwrap()),
        ],
    )
    .await;
    api.ok(
        "torrents/setCategory",
        &[("hashes", &h), ("category", "cat")],
    )
    .await;
    api.ok(
        "torrents/setAutoManagement",
        &[("hashes", &h), ("enable", "true")],
    )
    .await;
    let info = api.wait_state(&hash, &["stalledUP", "uploading"], 20).await;
    assert_eq!(info["auto_tmm"], true);
    assert_eq!(info["save_path"], cat_path.to_str().unwrap());
    assert_eq!(
        std::fs::read(cat_path.join("edited/sub/2.bin")).unwrap(),
        b"xxx"
    );

    // Banned addresses are kept in the preferences.
    api.ok(
        "transfer/banPeers",
        &[("peers", "10.9.8.7:6881|[2001:db8::1]:51413|bogus")],
    )
    .await;
    let prefs = api.json("app/preferences", &[]).await;
    let banned = prefs["banned_IPs"].as_str().unwrap();
    assert!(
        banned.contains("10.9.8.7") && banned.contains("2001:db8::1"),
        "{banned:?}"
    );

    // Everything holds after a restart.
    d.stop().await;
    let d = start_daemon(state.path(), downloads.path()).await;
    let api = d.api.clone();
    let info = api.wait_state(&hash, &["stalledUP", "uploading"], 20).await;
    assert_eq!(
        info["progress"], 1.0,
        "trusted once, still complete: {info}"
    );
    assert_eq!(info["save_path"], cat_path.to_str().unwrap());
    let list = api.json("torrents/trackers", &[("hash", &h)]).await;
    assert_eq!(tracker_urls(&list), [("udp://127.0.0.1:10".to_string(), 0)]);
    let names = api.json("torrents/files", &[("hash", &h)]).await;
    assert_eq!(names[1]["name"], "edited/sub/2.bin");
    // (The test gives each start its settings; the daemon wrote them to its file.)
    let file = std::fs::read_to_string(state.path().join("settings.json")).unwrap();
    assert!(file.contains("10.9.8.7"), "{file}");
    // A recheck finds the junk: the skipped check was a one-time trust.
    api.ok("torrents/recheck", &[("hashes", &h)]).await;
    let info = api
        .wait_state(&hash, &["stalledDL", "downloading", "missingFiles"], 20)
        .await;
    assert!(info["progress"].as_f64().unwrap() < 1.0, "{info}");
    d.stop().await;
}

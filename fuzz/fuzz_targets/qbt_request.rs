//! The qBittorrent API's request readers (`bt_daemon::qbt::request`, the preferences and
//! the login headers) on arbitrary bytes: never panic, and what they accept holds.
//!
//! The input is split at the first two `\n`: a header value, a query string, a form body.
#![no_main]

use std::net::SocketAddr;

use bt_daemon::qbt::{auth, preferences, request};
use bt_daemon::Settings;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let header = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let query = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();

    // Headers the guard and the logins read.
    let local: SocketAddr = "192.0.2.1:8080".parse().unwrap();
    let allowed = request::host_allowed(&header, local, "nas.home;*.example.org");
    if allowed && !header.is_empty() {
        let lower = header.to_ascii_lowercase();
        assert!(
            lower.contains("localhost")
                || lower.contains("nas.home")
                || lower.contains(".example.org")
                || lower.contains("127.")
                || lower.contains("::1")
                || lower.contains("192.0.2.1")
                || lower.contains(':')
                || lower.chars().any(|c| c.is_ascii_digit()),
            "{header:?} allowed"
        );
    }
    let _ = request::wildcard_match(&header, "bt.example.org");
    let _ = request::cross_site(&header, "127.0.0.1:8080");
    if let Some(sid) = auth::sid_cookie(&header) {
        assert!(!sid.contains(';'));
    }
    if let Some((user, _)) = bt_daemon::trpc::basic_credentials(&header) {
        assert!(!user.contains(':'));
    }

    // Parameters, as the endpoints read them.
    let mut p = request::form_pairs(query);
    p.extend(request::form_pairs(body));
    let _ = request::flag(&p, "deleteFiles");
    let _ = request::hash_list(&p);
    let _ = request::list_param(&p, "tags", ',');
    let _ = request::limit_param(&p);
    if let Ok(ids) = request::file_ids(&p) {
        assert!(ids.len() <= p.get("id").map_or(0, |v| v.split('|').count()));
    }
    let _ = request::file_indexes(&p);
    let _ = request::peer_ips(&p);
    let _ = request::share_limits(&p);

    // Preferences: whatever a client sends, the settings stay within their ranges.
    if let Some(Ok(Value::Object(mut prefs))) = p.get("json").map(|j| serde_json::from_str(j)) {
        // PBKDF2 is slow on purpose; the password's rule is checked without it.
        if let Some(Value::String(pw)) = prefs.remove("web_ui_password") {
            let mut one = serde_json::Map::new();
            if pw.chars().count() < 6 {
                one.insert("web_ui_password".into(), Value::String(pw));
                let mut st = Settings::default();
                assert!(preferences::apply(&mut st, &one).is_err());
            }
        }
        let mut st = Settings::default();
        if preferences::apply(&mut st, &prefs).is_ok() {
            assert!(st.schedule_from_hour <= 23 && st.schedule_to_hour <= 23);
            assert!(st.schedule_from_min <= 59 && st.schedule_to_min <= 59);
            assert!(st.scheduler_days <= 9);
            assert!(matches!(st.max_ratio_act, 0 | 1 | 3));
            assert!(st.web_ui_max_connections > 0);
            assert!(st.torrent_file_size_limit >= 1024);
            let _ = preferences::view(&st, local);
        }
    }
});

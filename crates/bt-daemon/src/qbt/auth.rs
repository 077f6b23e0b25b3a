//! Logins: the SID cookie, its expiry, and bans after repeated failures, as qBittorrent
//! does them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::credentials::verify_password;
use crate::settings::Settings;

/// Logged-in sessions and failed attempts.
#[derive(Debug, Default)]
pub struct Auth {
    sessions: Mutex<HashMap<String, Instant>>,
    failures: Mutex<HashMap<IpAddr, (u32, Option<Instant>)>>,
}

/// What a login attempt gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Login {
    /// In, with this session id.
    Ok(String),
    /// Wrong user name or password.
    Fails,
    /// Too many failures from this address.
    Banned,
}

/// Whether a request from `client` must carry a logged-in session.
pub fn needs_login(settings: &Settings, client: IpAddr) -> bool {
    settings.web_ui_password_pbkdf2.is_some()
        && !(settings.bypass_local_auth && client.is_loopback())
}

fn new_sid() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..32)
        .map(|_| char::from(ALPHABET[rand::random::<usize>() % ALPHABET.len()]))
        .collect()
}

impl Auth {
    /// Tries a login from `client`.
    pub fn login(&self, settings: &Settings, client: IpAddr, user: &str, password: &str) -> Login {
        let now = Instant::now();
        {
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, Some(until))) = failures.get(&client) {
                if now < *until {
                    return Login::Banned;
                }
                failures.remove(&client);
            }
        }
        let ok = !needs_login(settings, client)
            || (user == settings.web_ui_username
                && settings
                    .web_ui_password_pbkdf2
                    .as_deref()
                    .is_some_and(|stored| verify_password(password, stored)));
        if !ok {
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            let entry = failures.entry(client).or_insert((0, None));
            entry.0 += 1;
            if entry.0 >= settings.web_ui_max_auth_fail_count.max(1) {
                entry.1 = Some(now + Duration::from_secs(settings.web_ui_ban_duration));
            }
            return Login::Fails;
        }
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&client);
        let sid = new_sid();
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sid.clone(), now);
        Login::Ok(sid)
    }

    /// Ends a session.
    pub fn logout(&self, sid: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(sid);
    }

    /// Whether `sid` is a live session (its timer restarts).
    pub fn check(&self, settings: &Settings, sid: &str) -> bool {
        let now = Instant::now();
        let timeout = Duration::from_secs(settings.web_ui_session_timeout);
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, last| now.duration_since(*last) < timeout);
        match sessions.get_mut(sid) {
            Some(last) => {
                *last = now;
                true
            }
            None => false,
        }
    }
}

/// The `SID` value of a `Cookie` header.
pub fn sid_cookie(cookie: &str) -> Option<&str> {
    cookie
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == "SID")
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::hash_password;

    fn with_password() -> Settings {
        Settings {
            web_ui_password_pbkdf2: Some(hash_password("pw")),
            web_ui_max_auth_fail_count: 2,
            ..Settings::default()
        }
    }

    #[test]
    fn a_password_gates_remote_and_local_clients_unless_local_ones_bypass() {
        let remote: IpAddr = "10.0.0.2".parse().unwrap();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(!needs_login(&Settings::default(), remote));
        let mut s = with_password();
        assert!(needs_login(&s, remote) && needs_login(&s, local));
        s.bypass_local_auth = true;
        assert!(needs_login(&s, remote) && !needs_login(&s, local));
    }

    #[test]
    fn logins_give_sessions_and_repeated_failures_ban_the_address() {
        let s = with_password();
        let auth = Auth::default();
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        let Login::Ok(sid) = auth.login(&s, ip, "admin", "pw") else {
            panic!("right password refused");
        };
        assert!(auth.check(&s, &sid));
        assert!(!auth.check(&s, "forged"));
        auth.logout(&sid);
        assert!(!auth.check(&s, &sid));
        assert_eq!(auth.login(&s, ip, "admin", "nope"), Login::Fails);
        assert_eq!(auth.login(&s, ip, "root", "pw"), Login::Fails);
        assert_eq!(
            auth.login(&s, ip, "admin", "pw"),
            Login::Banned,
            "banned now"
        );
        let other: IpAddr = "10.0.0.3".parse().unwrap();
        assert!(matches!(auth.login(&s, other, "admin", "pw"), Login::Ok(_)));
    }

    #[test]
    fn the_sid_is_read_from_any_place_in_the_cookie_header() {
        assert_eq!(sid_cookie("a=1; SID=xyz; b=2"), Some("xyz"));
        assert_eq!(sid_cookie("SIDX=1"), None);
    }
}

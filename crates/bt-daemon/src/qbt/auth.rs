//! Logins: the SID cookie, its expiry, and bans after repeated failures, as qBittorrent
//! does them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::credentials::verify_password;
use crate::settings::Settings;

/// Logged-in sessions and failed attempts, shared by both façades (a failure through one
/// counts against the address in the other).
#[derive(Debug, Default)]
pub struct Auth {
    sessions: Mutex<HashMap<String, Instant>>,
    failures: Mutex<HashMap<IpAddr, (u32, Option<Instant>)>>,
}

/// Most live sessions; a login past it ends the session idle the longest.
const MAX_SESSIONS: usize = 1024;
/// Most addresses with failed logins remembered; past it, those not banned are forgotten
/// first, so a spray from many addresses cannot grow the table without bound.
const MAX_FAILING_ADDRESSES: usize = 65536;

/// What a check of a user name and password gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Right.
    Pass,
    /// Wrong; `banned` when this failure started a ban of the address.
    Fail {
        /// This failure was one too many: the address is banned from now on.
        banned: bool,
    },
    /// The address is banned; the credentials were not checked.
    Banned,
}

/// What a login attempt gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Login {
    /// In, with this session id.
    Ok(String),
    /// Wrong user name or password; `banned` as in [`Verdict::Fail`].
    Fails {
        /// This failure started a ban of the address.
        banned: bool,
    },
    /// Too many failures from this address.
    Banned,
}

/// Whether a request from `client` must carry a logged-in session. An IPv4 client
/// reaching a dual-stack socket (`::ffff:127.0.0.1`) is the same client as `127.0.0.1`.
pub fn needs_login(settings: &Settings, client: IpAddr) -> bool {
    settings.web_ui_password_pbkdf2.is_some()
        && !(settings.bypass_local_auth && client.to_canonical().is_loopback())
}

/// A new session id: 128 bits from the operating system's random source, in hex (also
/// the Transmission façade's `X-Transmission-Session-Id`).
pub(crate) fn new_sid() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Auth {
    /// Checks `user` and `password` from `client`, counting failures and banning the
    /// address after `web_ui_max_auth_fail_count` of them for `web_ui_ban_duration`.
    pub fn verify(
        &self,
        settings: &Settings,
        client: IpAddr,
        user: &str,
        password: &str,
    ) -> Verdict {
        let now = Instant::now();
        {
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, Some(until))) = failures.get(&client) {
                if now < *until {
                    return Verdict::Banned;
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
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if ok {
            failures.remove(&client);
            return Verdict::Pass;
        }
        if failures.len() >= MAX_FAILING_ADDRESSES && !failures.contains_key(&client) {
            failures.retain(|_, (_, until)| until.is_some_and(|u| now < u));
            if failures.len() >= MAX_FAILING_ADDRESSES {
                // Every remembered address is banned: count this one from scratch later.
                return Verdict::Fail { banned: false };
            }
        }
        let entry = failures.entry(client).or_insert((0, None));
        entry.0 += 1;
        let banned = entry.0 >= settings.web_ui_max_auth_fail_count.max(1);
        if banned {
            entry.1 = Some(now + Duration::from_secs(settings.web_ui_ban_duration));
        }
        Verdict::Fail { banned }
    }

    /// Whether `client` is banned now (a ban also refuses credentials checked before it).
    pub fn is_banned(&self, client: IpAddr) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        matches!(failures.get(&client), Some((_, Some(until))) if Instant::now() < *until)
    }

    /// Tries a login from `client`: a session on success.
    pub fn login(&self, settings: &Settings, client: IpAddr, user: &str, password: &str) -> Login {
        match self.verify(settings, client, user, password) {
            Verdict::Pass => {}
            Verdict::Fail { banned } => return Login::Fails { banned },
            Verdict::Banned => return Login::Banned,
        }
        let sid = new_sid();
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let timeout = Duration::from_secs(settings.web_ui_session_timeout);
        sessions.retain(|_, last| now.duration_since(*last) < timeout);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, last)| **last)
                .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(sid.clone(), now);
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
        match sessions.get_mut(sid) {
            Some(last) if now.duration_since(*last) < timeout => {
                *last = now;
                true
            }
            Some(_) => {
                sessions.remove(sid);
                false
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
        assert_eq!(
            auth.login(&s, ip, "admin", "nope"),
            Login::Fails { banned: false }
        );
        assert_eq!(
            auth.login(&s, ip, "root", "pw"),
            Login::Fails { banned: true },
            "the second failure reaches the limit of two"
        );
        assert_eq!(
            auth.login(&s, ip, "admin", "pw"),
            Login::Banned,
            "banned now"
        );
        let other: IpAddr = "10.0.0.3".parse().unwrap();
        assert!(matches!(auth.login(&s, other, "admin", "pw"), Login::Ok(_)));
    }

    #[test]
    fn session_ids_are_128_random_bits_and_expire_unused() {
        let mut s = with_password();
        let auth = Auth::default();
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        let sids: Vec<String> = (0..50)
            .map(|_| match auth.login(&s, ip, "admin", "pw") {
                Login::Ok(sid) => sid,
                other => panic!("{other:?}"),
            })
            .collect();
        for sid in &sids {
            assert_eq!(sid.len(), 32, "{sid}");
            assert!(sid.bytes().all(|b| b.is_ascii_hexdigit()), "{sid}");
        }
        let distinct: std::collections::HashSet<&String> = sids.iter().collect();
        assert_eq!(distinct.len(), sids.len());
        s.web_ui_session_timeout = 0;
        assert!(
            !auth.check(&s, &sids[0]),
            "a session past its timeout is over"
        );
    }

    #[test]
    fn a_dual_stack_loopback_client_is_local() {
        let mut s = with_password();
        s.bypass_local_auth = true;
        assert!(!needs_login(&s, "::ffff:127.0.0.1".parse().unwrap()));
        assert!(needs_login(&s, "::ffff:10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn the_sid_is_read_from_any_place_in_the_cookie_header() {
        assert_eq!(sid_cookie("a=1; SID=xyz; b=2"), Some("xyz"));
        assert_eq!(sid_cookie("SIDX=1"), None);
    }
}

//! `bt-daemon-doors`: programs we did not write try the doors of a `bt daemon` that has a
//! password, over plain HTTP and then TLS, on 127.0.0.1. Each door is one check:
//!
//! - curl: a list and `app/shutdown` without a login (403, and the daemon lives on); a
//!   `Host` naming another site (DNS rebinding, 401); a login posted with another site's
//!   `Origin` (CSRF, 401); an upload past `torrent_file_size_limit` (413);
//! - `transmission-remote` (Debian's 3.00): without credentials and with a wrong
//!   password (401), with the right one (the list);
//! - `qbittorrent-api`: a wrong password (`LoginFailed`), the right one (in, and the
//!   `SID` cookie is HttpOnly and SameSite=Strict);
//! - after `use_https` with an openssl certificate and a restart: curl trusting that
//!   certificate (locked, then a login whose cookie is Secure), plain HTTP on the TLS port
//!   (no answer), `transmission-remote` and `qbittorrent-api` over https;
//! - five wrong passwords through `qbittorrent-api`: the right one is refused after
//!   them, through both façades, and the daemon logs the ban.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::json;

use super::daemon::{read_log, BtDaemon};
use super::{Ctx, Need, Scenario};
use crate::peers::qbittorrent_api;
use crate::process;

/// The scenario.
pub static DOORS_SCENARIOS: &[Scenario] = &[Scenario {
    name: "bt-daemon-doors",
    needs: &[Need::Transmission, Need::QbittorrentApi, Need::Bt("daemon")],
    run: doors,
}];

/// The client script; the scenario writes it into its sandbox.
const CLIENT_SCRIPT: &str = include_str!("doors_client.py");
const USER: &str = "keeper";
const PASSWORD: &str = "a long pass phrase";
/// Time for one client call.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What one curl call got.
struct Reply {
    status: u16,
    headers: String,
    body: String,
}

/// Runs curl with `args` (bounded by `--max-time`); the status is 0 when no HTTP answer
/// came.
fn curl(dir: &Path, args: &[&str]) -> Result<Reply> {
    let headers = dir.join("curl-headers");
    let body = dir.join("curl-body");
    let _ = std::fs::remove_file(&headers);
    let _ = std::fs::remove_file(&body);
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "-o"])
        .arg(&body)
        .arg("-D")
        .arg(&headers)
        .args(["-w", "%{http_code}"])
        .args(args)
        .output()
        .context("curl")?;
    let code = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Ok(Reply {
        status: code.parse().unwrap_or(0),
        headers: std::fs::read_to_string(&headers).unwrap_or_default(),
        body: std::fs::read_to_string(&body).unwrap_or_default(),
    })
}

/// Runs `transmission-remote TARGET args` (bounded by `timeout`); whether it exited 0
/// and what it printed (stdout and stderr).
fn remote(target: &str, args: &[&str]) -> Result<(bool, String)> {
    let out = Command::new("timeout")
        .arg(CALL_TIMEOUT.as_secs().to_string())
        .arg("transmission-remote")
        .arg(target)
        .args(args)
        .output()
        .context("transmission-remote")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

/// Runs a step of the client script against `url`; its `saw:` lines, joined.
fn client(ctx: &Ctx, script: &Path, step: &str, url: &str, ca: Option<&Path>) -> Result<String> {
    let mut cmd = Command::new(qbittorrent_api::python());
    cmd.arg(script).args([step, url, USER, PASSWORD]);
    if let Some(ca) = ca {
        cmd.arg(ca);
    }
    let out = process::run(&format!("doors-client-{step}"), &cmd, CALL_TIMEOUT)
        .with_context(|| format!("qbittorrent-api step {step} against {url}"));
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            let log = std::fs::read_to_string(
                ctx.sandbox
                    .path()
                    .join("logs")
                    .join(format!("doors-client-{step}.log")),
            )
            .unwrap_or_default();
            bail!("{e:#}\n{log}");
        }
    };
    ensure!(
        out.contains(&format!("step {step}: ok")),
        "qbittorrent-api step {step}: {out}"
    );
    Ok(out
        .lines()
        .filter(|l| l.starts_with("saw:"))
        .collect::<Vec<_>>()
        .join("; "))
}

/// Checks one door and logs what it got.
fn door(name: &str, ok: bool, got: impl std::fmt::Display) -> Result<()> {
    println!("  door: {name}: {got}");
    ensure!(ok, "door {name:?} opened: {got}");
    Ok(())
}

fn doors(ctx: &Ctx) -> Result<()> {
    let sb = &ctx.sandbox;
    let state_dir = sb.mkdir("daemon-state")?;
    let downloads = sb.mkdir("downloads")?;
    let work = sb.mkdir("doors")?;
    let script = work.join("doors_client.py");
    std::fs::write(&script, CLIENT_SCRIPT)?;
    let api = sb.addr()?;
    let base = format!("http://{api}");
    let url = |path: &str| format!("{base}/api/v2/{path}");
    let daemon = BtDaemon::start(ctx, "bt-daemon", &state_dir, &downloads, api)?;

    // Lock it: without a password the API is open on loopback, so set one.
    let prefs = json!({"web_ui_username": USER, "web_ui_password": PASSWORD}).to_string();
    let set = curl(
        &work,
        &[
            "--data-urlencode",
            &format!("json={prefs}"),
            &url("app/setPreferences"),
        ],
    )?;
    ensure!(set.status == 200, "setting the password: {}", set.status);

    let r = curl(&work, &[&url("torrents/info")])?;
    door(
        "curl: torrents/info without a login",
        r.status == 403,
        r.status,
    )?;
    let r = curl(&work, &["-X", "POST", &url("app/shutdown")])?;
    door(
        "curl: app/shutdown without a login",
        r.status == 403,
        r.status,
    )?;
    let r = curl(&work, &[&url("app/version")])?;
    door(
        "the daemon still runs after that",
        r.status == 403,
        r.status,
    )?;
    let r = curl(
        &work,
        &[
            "-H",
            &format!("Host: evil.example:{}", api.port()),
            &url("app/version"),
        ],
    )?;
    door(
        "curl: Host naming another site (DNS rebinding)",
        r.status == 401,
        r.status,
    )?;
    let login_form = format!("username={USER}&password={}", PASSWORD.replace(' ', "+"));
    let r = curl(
        &work,
        &[
            "-H",
            "Origin: http://evil.example",
            "--data",
            &login_form,
            &url("auth/login"),
        ],
    )?;
    door(
        "curl: a login posted from another site (CSRF)",
        r.status == 401,
        r.status,
    )?;

    // Logged in, an upload past the body limit is refused before it is read.
    let jar = work.join("cookies");
    let jar_s = jar.to_string_lossy().into_owned();
    let r = curl(
        &work,
        &["-c", &jar_s, "--data", &login_form, &url("auth/login")],
    )?;
    ensure!(
        r.status == 200 && r.body == "Ok.",
        "curl login: {} {}",
        r.status,
        r.body
    );
    let big = work.join("big.torrent");
    std::fs::write(&big, vec![b'x'; 40 << 20])?;
    let r = curl(
        &work,
        &[
            "-b",
            &jar_s,
            "-F",
            &format!("torrents=@{}", big.display()),
            &url("torrents/add"),
        ],
    )?;
    door(
        "curl: a 40 MiB upload (limit 32 MiB)",
        r.status == 413,
        r.status,
    )?;
    std::fs::remove_file(&big)?;

    let target = api.to_string();
    let (ok, out) = remote(&target, &["-l"])?;
    door(
        "transmission-remote -l without credentials",
        !ok && out.contains("401"),
        out.trim(),
    )?;
    let (ok, out) = remote(&target, &["-n", &format!("{USER}:wrong password"), "-l"])?;
    door(
        "transmission-remote -l with a wrong password",
        !ok && out.contains("401"),
        out.trim(),
    )?;
    let (ok, out) = remote(&target, &["-n", &format!("{USER}:{PASSWORD}"), "-l"])?;
    door(
        "transmission-remote -l with the right password lists",
        ok && out.contains("Sum:"),
        out.trim(),
    )?;
    let saw = client(ctx, &script, "login", &base, None)?;
    door(
        "qbittorrent-api: wrong password refused, right one in, cookie HttpOnly SameSite=Strict",
        true,
        saw,
    )?;

    // TLS: a certificate from openssl, then a restart (use_https takes effect at start).
    let cert = work.join("cert.pem");
    let key = work.join("key.pem");
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .context("openssl")?;
    ensure!(
        status.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let tls = json!({
        "use_https": true,
        "web_ui_https_cert_path": cert,
        "web_ui_https_key_path": key,
    })
    .to_string();
    let r = curl(
        &work,
        &[
            "-b",
            &jar_s,
            "--data-urlencode",
            &format!("json={tls}"),
            &url("app/setPreferences"),
        ],
    )?;
    ensure!(r.status == 200, "use_https: {} {}", r.status, r.body);
    daemon.terminate(ctx)?;
    let daemon = BtDaemon::start(ctx, "bt-daemon-tls", &state_dir, &downloads, api)?;
    let tls_base = format!("https://{api}");
    let tls_url = |path: &str| format!("{tls_base}/api/v2/{path}");
    let cert_s = cert.to_string_lossy().into_owned();

    let r = curl(&work, &["--cacert", &cert_s, &tls_url("app/version")])?;
    door(
        "curl over TLS: app/version without a login",
        r.status == 403,
        r.status,
    )?;
    let r = curl(
        &work,
        &[
            "--cacert",
            &cert_s,
            "--data",
            &login_form,
            &tls_url("auth/login"),
        ],
    )?;
    let cookie = r
        .headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_default()
        .to_owned();
    door(
        "curl over TLS: login; the cookie is Secure, HttpOnly, SameSite=Strict",
        r.status == 200
            && ["Secure", "HttpOnly", "SameSite=Strict"]
                .iter()
                .all(|a| cookie.contains(a)),
        format!("{} {}", r.status, cookie.trim()),
    )?;
    let r = curl(&work, &[&url("app/version")])?;
    door(
        "plain HTTP on the TLS port gets no answer",
        r.status == 0,
        r.status,
    )?;
    let tls_target = format!("{tls_base}/transmission");
    let (ok, out) = remote(&tls_target, &["-n", &format!("{USER}:{PASSWORD}"), "-l"])?;
    door(
        "transmission-remote over https with the right password lists",
        ok && out.contains("Sum:"),
        out.trim(),
    )?;
    let saw = client(ctx, &script, "login", &tls_base, Some(&cert))?;
    door(
        "qbittorrent-api over https: in, and the cookie is Secure",
        true,
        saw,
    )?;

    // Last, as it bans 127.0.0.1 for an hour.
    let saw = client(ctx, &script, "ban", &tls_base, Some(&cert))?;
    door(
        "qbittorrent-api: five wrong passwords, then the right one is refused",
        true,
        saw,
    )?;
    let (ok, out) = remote(&tls_target, &["-n", &format!("{USER}:{PASSWORD}"), "-l"])?;
    door(
        "transmission-remote with the right password from the banned address",
        !ok && out.contains("403"),
        out.trim(),
    )?;
    let mut daemon = daemon;
    let log = read_log(ctx, "bt-daemon-tls", daemon.proc_mut())?;
    door(
        "the ban is in the daemon's log",
        log.contains("banned from the API for 3600 s after 5 failed logins"),
        "logged",
    )?;
    daemon.terminate(ctx)?;
    Ok(())
}

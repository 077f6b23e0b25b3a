"""The `bt-daemon-doors` scenario's third-party client: the `qbittorrent-api` package
trying the doors of a `bt daemon` that has a password, as it would try qBittorrent's.

    python doors_client.py STEP URL USER PASSWORD [CA_FILE]

Steps:
  login   a wrong password is refused (LoginFailed); the right one lets the client list
          torrents and read the version; prints the session cookie's flags
  ban     five wrong passwords, then the right one: refused (the address is banned)

It prints `saw: ...` lines and `step STEP: ok` at the end, or `MISMATCH: ...` and exits 1.
"""

import json
import sys

import qbittorrentapi

STEP, URL, USER, PASSWORD = sys.argv[1:5]
CA_FILE = sys.argv[5] if len(sys.argv) > 5 else None


def saw(what, value=None):
    print("saw: %s%s" % (what, "" if value is None else ": " + json.dumps(value, default=str)),
          flush=True)


def expect(cond, what, got=None):
    if not cond:
        print("MISMATCH: %s%s" % (what, "" if got is None else "; got " + json.dumps(got, default=str)),
              flush=True)
        sys.exit(1)


def client(password):
    args = {"timeout": 20}
    if CA_FILE:
        args["verify"] = CA_FILE
    return qbittorrentapi.Client(host=URL, username=USER, password=password,
                                 REQUESTS_ARGS=args)


def refused(password):
    """The exception class a login with `password` raised, or None if it got in."""
    try:
        client(password).auth_log_in()
        return None
    except qbittorrentapi.exceptions.APIError as e:
        return type(e).__name__


if STEP == "login":
    got = refused("wrong password")
    expect(got == "LoginFailed", "a wrong password is refused", got)
    c = client(PASSWORD)
    c.auth_log_in()
    expect(c.is_logged_in, "logged in with the right password")
    saw("version", str(c.app_version()))
    expect(c.torrents_info() == [], "an empty list", c.torrents_info())
    cookies = [{"name": k.name, "secure": k.secure,
                "httponly": k.has_nonstandard_attr("HttpOnly"),
                "samesite": k.get_nonstandard_attr("SameSite")}
               for k in c._http_session.cookies]
    saw("cookies", cookies)
    sid = [k for k in cookies if k["name"] == "SID"]
    expect(len(sid) == 1, "one SID cookie", cookies)
    expect(sid[0]["httponly"] and sid[0]["samesite"] == "Strict", "HttpOnly, SameSite=Strict",
           cookies)
    if URL.startswith("https://"):
        expect(sid[0]["secure"], "Secure over TLS", cookies)
        prefs = c.app_preferences()
        expect(prefs["use_https"] is True, "use_https in the preferences", prefs["use_https"])
    c.auth_log_out()
elif STEP == "ban":
    for i in range(5):
        got = refused("wrong %d" % i)
        expect(got == "LoginFailed", "wrong password %d refused" % (i + 1), got)
    got = refused(PASSWORD)
    saw("the right password after five failures", got)
    expect(got is not None, "the right password is refused once the address is banned")
else:
    expect(False, "a known step", STEP)
print("step %s: ok" % STEP, flush=True)

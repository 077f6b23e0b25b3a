"""The third-party client of the `bt-daemon-*` fixture scenarios: the `qbittorrent-api`
package from PyPI driving `bt daemon` through the qBittorrent Web API, exactly as it drives
qBittorrent. The scenario writes this file and a plan (JSON) into its temp dir and runs it
with the venv's python:

    python qbt_client.py PLAN.json STEP

Steps of `bt-daemon-qbittorrent-api`:
  add-and-watch  log in; create a category; add one .torrent by upload in that category and
                 one magnet link stopped; check the stopped one; start it; watch both until
                 they seed; check properties, files, trackers, sync/maindata (full, deltas);
                 stop and start a complete one
  delete         delete the magnet one with its files; check it is gone everywhere
Steps of `bt-daemon-sigkill-and-sigterm-restarts`:
  setup          log in; create a category and tags; add the plan's torrents
  snapshot       wait until every torrent is in the state the plan expects, then print
                 `snapshot: {...}` (torrents, categories, tags) for the harness to compare

It prints what it sees as `saw: ...` lines and `step STEP: ok` at the end. On the first
surprise it prints `MISMATCH: ...` and exits 1.
"""

import json
import os
import sys
import time

import qbittorrentapi

PLAN = json.load(open(sys.argv[1]))
STEP = sys.argv[2]


class Mismatch(Exception):
    pass


def show(value):
    return json.dumps(value, sort_keys=True, default=str)


def saw(what, value=None):
    print("saw: %s%s" % (what, "" if value is None else ": " + show(value)), flush=True)


def expect(cond, what, got=None):
    if not cond:
        raise Mismatch(what + ("" if got is None else "; got " + show(got)))


def version_tuple(text):
    return tuple(int(p) for p in text.strip().lstrip("v").split(".") if p.isdigit())


class Api:
    """A logged-in client and the state names of the Web API version the server reports."""

    def __init__(self):
        self.c = qbittorrentapi.Client(
            host="127.0.0.1",
            port=PLAN["api_port"],
            username="admin",
            password="adminadmin",
            REQUESTS_ARGS={"timeout": 20},
            RAISE_NOTIMPLEMENTEDERROR_FOR_UNIMPLEMENTED_API_ENDPOINTS=True,
        )
        self.c.auth_log_in()
        expect(self.c.is_logged_in, "logged in after auth/login")
        self.webapi = str(self.c.app_web_api_version())
        # Web API 2.11 (qBittorrent 5) renamed pausedDL/pausedUP to stoppedDL/stoppedUP.
        stopped = "stopped" if version_tuple(self.webapi) >= (2, 11) else "paused"
        self.stopped_dl = stopped + "DL"
        self.stopped_up = stopped + "UP"
        self.states = {
            "error", "missingFiles", "uploading", "queuedUP", "stalledUP", "checkingUP",
            "forcedUP", "allocating", "downloading", "metaDL", "forcedMetaDL", "queuedDL",
            "stalledDL", "checkingDL", "forcedDL", "checkingResumeData", "moving", "unknown",
            self.stopped_dl, self.stopped_up,
        }
        # Every state each torrent was seen in by any torrents/info call, repeats dropped.
        self.history = {}

    def info(self, hashes=None):
        """torrents/info by hash (every torrent when `hashes` is None)."""
        if hashes is None:
            listed = self.c.torrents_info()
        else:
            listed = self.c.torrents_info(torrent_hashes=list(hashes))
        infos = {t["hash"]: dict(t) for t in listed}
        for h, t in infos.items():
            seen = self.history.setdefault(h, [])
            if not seen or seen[-1] != t["state"]:
                seen.append(t["state"])
        return infos

    def watch(self, hashes, done, timeout, label):
        """Polls torrents/info every 0.1 s until done(torrent) holds for every hash; returns
        the states each went through (repeats dropped) and the last torrent objects."""
        seen = {h: [] for h in hashes}
        deadline = time.monotonic() + timeout
        while True:
            infos = self.info(hashes)
            for h in hashes:
                expect(h in infos, "%s: torrents/info lists %s" % (label, h), sorted(infos))
                state = infos[h]["state"]
                expect(state in self.states,
                       "%s: a state name of Web API %s" % (label, self.webapi), state)
                expect(state not in ("error", "missingFiles"),
                       "%s: %s not in error" % (label, h), infos[h])
                if not seen[h] or seen[h][-1] != state:
                    seen[h].append(state)
            if all(done(infos[h]) for h in hashes):
                saw("%s: states" % label, seen)
                return seen, infos
            expect(time.monotonic() < deadline, "%s within %d s" % (label, timeout),
                   {h: {k: infos[h].get(k) for k in ("state", "progress", "num_seeds")}
                    for h in hashes})
            time.sleep(0.1)


def seeding(t):
    return t["state"] in ("uploading", "stalledUP") and t["progress"] == 1


# Incomplete and running; complete (qBittorrent's names, Web API 2.x).
DL_STATES = {"metaDL", "forcedMetaDL", "allocating", "checkingResumeData", "checkingDL",
             "queuedDL", "downloading", "stalledDL", "forcedDL"}
UP_STATES = {"checkingUP", "queuedUP", "uploading", "stalledUP", "forcedUP"}


def went_to_seeding(name, states):
    """`states` (repeats dropped) goes through incomplete states, then complete ones only."""
    first_up = next((i for i, s in enumerate(states) if s in UP_STATES), None)
    expect(first_up is not None and first_up > 0
           and all(s in DL_STATES for s in states[:first_up])
           and all(s in UP_STATES for s in states[first_up:]),
           "%s: states go from downloading ones to seeding ones" % name, states)


def sorted_files(rows):
    return sorted((r["name"], r["size"]) for r in rows)


def check_complete(api, spec, t):
    """A torrent that seeds: sizes, paths, files, properties as the plan says."""
    h = spec["hash"]
    for key, want in (("size", spec["size"]), ("total_size", spec["size"]),
                      ("completed", spec["size"]), ("amount_left", 0), ("name", spec["name"]),
                      ("save_path", spec["save_path"]), ("content_path", spec["content_path"]),
                      ("category", spec["category"]), ("has_metadata", True)):
        expect(t.get(key) == want, "%s: torrents/info %s == %s" % (spec["name"], key, show(want)),
               t.get(key))
    expect(t["downloaded"] >= spec["size"],
           "%s: torrents/info downloaded >= size %d" % (spec["name"], spec["size"]),
           t["downloaded"])
    props = dict(api.c.torrents_properties(torrent_hash=h))
    for key, want in (("piece_size", spec["piece_length"]), ("pieces_num", spec["num_pieces"]),
                      ("pieces_have", spec["num_pieces"]), ("total_size", spec["size"]),
                      ("save_path", spec["save_path"])):
        expect(props.get(key) == want,
               "%s: torrents/properties %s == %s" % (spec["name"], key, show(want)),
               props.get(key))
    files = sorted_files(api.c.torrents_files(torrent_hash=h))
    want = sorted((f["path"], f["size"]) for f in spec["files"])
    expect(files == [tuple(f) for f in want],
           "%s: torrents/files names and sizes" % spec["name"], files)
    saw("%s: %d files, %d pieces of %d, under %s" % (
        spec["name"], len(files), props["pieces_num"], props["piece_size"], t["content_path"]))


def tracker_working(api, spec):
    """The plan's tracker is listed for the torrent and reported working (status 2)."""
    deadline = time.monotonic() + 15
    while True:
        rows = [dict(r) for r in api.c.torrents_trackers(torrent_hash=spec["hash"])]
        ours = [r for r in rows if r["url"] == PLAN["tracker"]]
        expect(len(ours) == 1,
               "%s: torrents/trackers lists %s once" % (spec["name"], PLAN["tracker"]),
               [r["url"] for r in rows])
        if ours[0]["status"] == 2:
            saw("%s: tracker working" % spec["name"], ours[0])
            return
        expect(time.monotonic() < deadline, "%s: tracker status 2 (working)" % spec["name"],
               ours[0])
        time.sleep(0.2)


def add_and_watch():
    api = Api()
    c = api.c
    saw("app/version", str(c.app_version()))
    saw("app/webapiVersion", api.webapi)
    expect(version_tuple(api.webapi) >= (2, 11), "Web API 2.11 or later", api.webapi)
    expect(c.app_default_save_path() == PLAN["download_dir"], "app/defaultSavePath",
           c.app_default_save_path())
    cat = PLAN["category"]
    c.torrents_create_category(name=cat["name"], save_path=cat["save_path"])
    cats = {k: dict(v) for k, v in c.torrents_categories().items()}
    expect(cats.get(cat["name"], {}).get("savePath") == cat["save_path"],
           "torrents/categories has %s with its save path" % cat["name"], cats)

    up, mag = PLAN["torrents"]["upload"], PLAN["torrents"]["magnet"]
    r = c.torrents_add(torrent_files=up["torrent_file"], category=cat["name"], tags=up["tags"])
    expect(str(r) == "Ok.", "torrents/add by upload answers Ok.", str(r))
    r = c.torrents_add(urls=mag["magnet"], tags=mag["tags"], is_stopped=True)
    expect(str(r) == "Ok.", "torrents/add of a magnet link answers Ok.", str(r))

    # The magnet one stays stopped: no metadata is fetched, nothing is downloaded.
    for _ in range(10):
        t = api.info([up["hash"], mag["hash"]])[mag["hash"]]
        expect(t["state"] == api.stopped_dl, "magnet added stopped is %s" % api.stopped_dl,
               t["state"])
        expect(t["has_metadata"] is False and t["progress"] == 0,
               "stopped magnet has no metadata and no progress",
               {k: t[k] for k in ("has_metadata", "progress")})
        time.sleep(0.1)
    saw("stopped magnet", {k: t[k] for k in ("state", "name", "tags", "has_metadata")})
    for query, want in (({"status_filter": "stopped"}, [mag["hash"]]),
                        ({"category": cat["name"]}, [up["hash"]]),
                        ({"tag": mag["tags"][0]}, [mag["hash"]])):
        got = sorted(t["hash"] for t in c.torrents_info(**query))
        expect(got == want, "torrents/info %s lists %s" % (show(query), want), got)
    t = api.info([up["hash"]])[up["hash"]]
    expect(t["category"] == cat["name"] and t["save_path"] == cat["save_path"],
           "the uploaded torrent is in its category's folder",
           {k: t[k] for k in ("category", "save_path")})

    full = c.sync_maindata(rid=0)
    expect(full.get("full_update") is True, "sync/maindata rid=0 is a full update",
           full.get("full_update"))
    expect({up["hash"], mag["hash"]} <= set(full["torrents"]),
           "the full update lists both torrents", sorted(full["torrents"]))
    expect(full["categories"].get(cat["name"], {}).get("savePath") == cat["save_path"],
           "the full update has the category", full["categories"])
    expect(set(up["tags"] + mag["tags"]) <= set(full["tags"]), "the full update has the tags",
           full["tags"])
    expect("server_state" in full, "the full update has server_state", sorted(full))
    rid = full["rid"]
    saw("sync/maindata full", {"rid": rid, "torrents": sorted(full["torrents"]),
                               "tags": full["tags"]})

    c.torrents_start(torrent_hashes=mag["hash"])
    _, infos = api.watch([up["hash"], mag["hash"]], seeding, PLAN["timeout"], "to seeding")
    history = {spec["name"]: api.history[spec["hash"]] for spec in (up, mag)}
    saw("states since added", history)
    went_to_seeding(up["name"], history[up["name"]])
    magnet_states = history[mag["name"]]
    expect(magnet_states[0] == api.stopped_dl, "the magnet one was %s first" % api.stopped_dl,
           magnet_states)
    went_to_seeding(mag["name"], magnet_states[1:])
    for status in ("completed", "seeding"):
        got = sorted(t["hash"] for t in c.torrents_info(status_filter=status))
        expect(got == sorted([up["hash"], mag["hash"]]),
               "torrents/info filter=%s lists both" % status, got)
    for spec in (up, mag):
        check_complete(api, spec, infos[spec["hash"]])
        tracker_working(api, spec)

    delta = c.sync_maindata(rid=rid)
    expect(not delta.get("full_update"), "sync/maindata with rid is a delta",
           delta.get("full_update"))
    expect(delta["rid"] > rid, "the delta's rid grows", delta["rid"])
    changed = delta.get("torrents", {})
    expect(changed.get(mag["hash"], {}).get("progress") == 1,
           "the delta carries the magnet one's new progress", changed.get(mag["hash"]))
    expect("name" not in changed.get(up["hash"], {}),
           "the delta leaves out unchanged fields", changed.get(up["hash"]))
    c.torrents_add_tags(tags="checked", torrent_hashes=up["hash"])
    delta2 = c.sync_maindata(rid=delta["rid"])
    got = delta2.get("torrents", {}).get(up["hash"], {})
    expect("checked" in got.get("tags", ""), "the next delta carries the new tag", got)
    expect("name" not in got and "save_path" not in got,
           "the next delta carries only what changed", sorted(got))
    expect("checked" in delta2.get("tags", []), "the next delta lists the created tag",
           delta2.get("tags"))
    saw("sync/maindata deltas", {"rid": [rid, delta["rid"], delta2["rid"]],
                                 "fields": sorted(got)})

    c.torrents_stop(torrent_hashes=up["hash"])
    api.watch([up["hash"]], lambda t: t["state"] == api.stopped_up, 15, "stop a complete one")
    c.torrents_start(torrent_hashes=up["hash"])
    api.watch([up["hash"]], seeding, 30, "start it again")


def delete():
    api = Api()
    c = api.c
    up, mag = PLAN["torrents"]["upload"], PLAN["torrents"]["magnet"]
    full = c.sync_maindata(rid=0)
    expect(os.path.exists(mag["content_path"]), "the magnet one's files exist before delete",
           mag["content_path"])
    c.torrents_delete(delete_files=True, torrent_hashes=mag["hash"])
    listed = set(api.info())
    expect(mag["hash"] not in listed and up["hash"] in listed,
           "torrents/info lists the other one only", sorted(listed))
    delta = c.sync_maindata(rid=full["rid"])
    expect(mag["hash"] in delta.get("torrents_removed", []),
           "the delta lists the deleted one in torrents_removed", delta.get("torrents_removed"))
    expect(not os.path.exists(mag["content_path"]), "the deleted one's files are gone",
           mag["content_path"])
    expect(os.path.exists(up["content_path"]), "the other one's files stay", up["content_path"])
    saw("deleted with files", {"removed": delta.get("torrents_removed"), "left": sorted(listed)})


def setup():
    api = Api()
    c = api.c
    cat = PLAN["category"]
    c.torrents_create_category(name=cat["name"], save_path=cat["save_path"])
    c.torrents_create_tags(tags=PLAN["tags"])
    for spec in PLAN["torrents"].values():
        if "torrent_file" in spec:
            r = c.torrents_add(torrent_files=spec["torrent_file"], category=spec["category"],
                               tags=spec["tags"], is_stopped=spec["stopped"])
        else:
            r = c.torrents_add(urls=spec["magnet"], category=spec["category"],
                               tags=spec["tags"], is_stopped=spec["stopped"])
        expect(str(r) == "Ok.", "torrents/add %s answers Ok." % spec["name"], str(r))
    saw("added", sorted(api.info()))


def snapshot():
    api = Api()
    specs = PLAN["torrents"]

    def done(t):
        spec = next(s for s in specs.values() if s["hash"] == t["hash"])
        return api.stopped_dl == t["state"] if spec["stopped"] else seeding(t)

    api.watch([s["hash"] for s in specs.values()], done, PLAN["timeout"], "until settled")
    keys = ("name", "state", "category", "tags", "save_path", "content_path", "size",
            "completed", "downloaded", "downloaded_session", "progress", "added_on")
    snap = {
        "torrents": {h: {k: t.get(k) for k in keys} for h, t in api.info().items()},
        "categories": {k: dict(v).get("savePath") for k, v in api.c.torrents_categories().items()},
        "tags": sorted(api.c.torrents_tags()),
    }
    print("snapshot: " + show(snap), flush=True)


STEPS = {"add-and-watch": add_and_watch, "delete": delete, "setup": setup, "snapshot": snapshot}

try:
    STEPS[STEP]()
except Mismatch as e:
    print("MISMATCH: step %s: %s" % (STEP, e), flush=True)
    sys.exit(1)
except qbittorrentapi.exceptions.APIError as e:
    resp = getattr(e, "response", None)
    detail = "" if resp is None else " (%s %s -> HTTP %s: %r)" % (
        resp.request.method, resp.request.url, resp.status_code, resp.text[:300])
    print("MISMATCH: step %s: qbittorrent-api raised %s: %s%s" % (
        STEP, type(e).__name__, e, detail), flush=True)
    sys.exit(1)
print("step %s: ok" % STEP, flush=True)

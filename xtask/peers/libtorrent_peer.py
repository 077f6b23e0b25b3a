#!/usr/bin/python3
"""Drive libtorrent (Debian's python3-libtorrent 2.0) for `cargo xtask fixture-test`.

Run it with /usr/bin/python3: a python3 earlier on PATH may not import libtorrent.
Everything stays on loopback: listens on 127.0.0.1, DHT/LSD/UPnP/NAT-PMP and uTP off.

One-shot modes (print one JSON object, exit 0):
  info <file.torrent>
      {"info_hash", "name", "num_pieces", "piece_length", "total_size", "files": [{"path",
       "size", "pad"}], "piece_hashes": [hex...]}
  create <path> <out.torrent> [piece_len] [--tracker URL]... [--comment TEXT] [--private]
      a v1-only torrent of <path> (a file or a folder); prints what `info` prints

Session modes (run until killed; one JSON status line on stdout every --interval seconds:
{"state", "progress", "num_peers", "is_seeding", "is_finished", "total_upload",
 "total_download", "total_payload_upload", "total_payload_download", "error"}):
  seed --torrent T --save-path DIR --port PORT [--peer IP:PORT]... [--upload-limit B/S]
      checks the data in DIR and seeds it; exits 3 if the data is not complete
  download (--torrent T | --magnet URI) --save-path DIR --port PORT [--peer IP:PORT]...
      downloads into DIR and keeps seeding afterwards (with --magnet: fetches the
      metadata from peers first)
Both also take [--peers-file FILE] [--interval SECONDS] [--listen-ip IP] and
[--dht-node IP:PORT]... (turns the DHT on, bootstrapped from those nodes, with the
settings that make it work on loopback; give each session its own --listen-ip).
Status lines then also carry "has_metadata", "peer_addrs" (connected peers' addresses)
and "dht_nodes".

`--peer` endpoints are dialled (connect_peer) every second until connected, because
libtorrent ignores connect_peer while it checks files and after a failed attempt.
`--peers-file` names a file of IP:PORT lines, re-read every second, whose endpoints are
dialled the same way (so a running seeder can be told to dial a leecher started later).
"""

import argparse
import json
import os
import sys
import time

import libtorrent as lt


def hex_of(digest):
    """Hex of a sha1_hash or bytes value, whichever this binding returns."""
    if isinstance(digest, (bytes, bytearray)):
        return digest.hex()
    return str(digest)


def describe(ti):
    """The facts of a torrent_info the harness checks."""
    fs = ti.files()
    files = []
    for i in range(fs.num_files()):
        files.append({
            "path": fs.file_path(i),
            "size": fs.file_size(i),
            "pad": bool(fs.file_flags(i) & lt.file_storage.flag_pad_file),
        })
    return {
        "info_hash": hex_of(ti.info_hashes().v1),
        "name": ti.name(),
        "num_pieces": ti.num_pieces(),
        "piece_length": ti.piece_length(),
        "total_size": ti.total_size(),
        "files": files,
        "piece_hashes": [hex_of(ti.hash_for_piece(i)) for i in range(ti.num_pieces())],
    }


def cmd_info(args):
    print(json.dumps(describe(lt.torrent_info(args.torrent))))


def cmd_create(args):
    path = os.path.abspath(args.path)
    fs = lt.file_storage()
    lt.add_files(fs, path)
    if fs.num_files() == 0:
        sys.exit("create: no files under %s" % path)
    ct = lt.create_torrent(fs, args.piece_len, flags=lt.create_torrent.v1_only)
    for url in args.tracker:
        ct.add_tracker(url)
    if args.comment is not None:
        ct.set_comment(args.comment)
    if args.private:
        ct.set_priv(True)
    ct.set_creator("bt fixture-test (libtorrent %s)" % lt.__version__)
    lt.set_piece_hashes(ct, os.path.dirname(path))
    with open(args.out, "wb") as out:
        out.write(lt.bencode(ct.generate()))
    print(json.dumps(describe(lt.torrent_info(args.out))))


def parse_peer(text):
    host, _, port = text.rpartition(":")
    return (host, int(port))


def peers_from_file(path):
    """The IP:PORT lines of `path`; none if it is missing or being rewritten."""
    try:
        with open(path) as f:
            return [parse_peer(line.strip()) for line in f if line.strip()]
    except (OSError, ValueError):
        return []


def session_settings(args):
    dht = bool(args.dht_node)
    settings = {
        "listen_interfaces": "%s:%d" % (args.listen_ip, args.port),
        # Outgoing connections from the listen address too, so each session is one IP.
        "outgoing_interfaces": args.listen_ip,
        "enable_dht": dht,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        # With it off, meeting our own address among 127.0.0.1 peers bans the whole IP.
        "allow_multiple_connections_per_ip": True,
        "min_reconnect_time": 1,
        "peer_connect_timeout": 3,
        "smooth_connects": False,
        "connection_speed": 100,
        "upload_rate_limit": args.upload_limit,
        "download_rate_limit": 0,
        "unchoke_slots_limit": -1,
        "send_buffer_watermark": 8 * 1024 * 1024,
        # libtorrent sizes a peer's send buffer (how far ahead it reads) from that peer's
        # upload rate, from a 10 KiB floor. A new connection therefore starts with one or
        # two blocks read at a time, and each read wakes the disk threads. On 2 cores a
        # 16 KiB-piece transfer could stay in that mode for a whole run (seeder CPU and
        # context switches up to 3x and 8x). A 4 MiB floor reads ahead from the start.
        "send_buffer_low_watermark": 4 * 1024 * 1024,
        "send_buffer_watermark_factor": 400,
        "max_out_request_queue": 1500,
        "user_agent": "bt-fixture-test/libtorrent-%s" % lt.__version__,
        "alert_mask": (lt.alert_category.error | lt.alert_category.status
                       | lt.alert_category.peer | lt.alert_category.connect
                       | lt.alert_category.tracker),
    }
    if args.encryption == "forced":
        # MSE/PE with RC4 only, both ways: plaintext peers are refused.
        settings.update({
            "out_enc_policy": int(lt.enc_policy.forced),
            "in_enc_policy": int(lt.enc_policy.forced),
            "allowed_enc_level": int(lt.enc_level.rc4),
            "prefer_rc4": True,
        })
    if dht:
        # DHT on loopback: each session has its own 127.0.0.x; nothing is restricted.
        settings.update({
            "dht_bootstrap_nodes": "",
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
            "dht_ignore_dark_internet": False,
            "dht_enforce_node_id": False,
            "dht_prefer_verified_node_ids": False,
            "dht_announce_interval": 5,
        })
    return settings


def status_line(status):
    return json.dumps({
        "state": str(status.state),
        "progress": status.progress,
        "num_peers": status.num_peers,
        "is_seeding": status.is_seeding,
        "is_finished": status.is_finished,
        "total_upload": status.total_upload,
        "total_download": status.total_download,
        "total_payload_upload": status.total_payload_upload,
        "total_payload_download": status.total_payload_download,
        "error": status.errc.message() if status.errc.value() else None,
        "has_metadata": status.has_metadata,
    })


def cmd_session(args):
    ses = lt.session(session_settings(args))
    if args.upload_limit:
        # Loopback peers fall in libtorrent's unlimited "local" peer class; put every
        # address in the global class so the rate limit applies to them too.
        classes = lt.ip_filter()
        classes.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
        ses.set_peer_class_filter(classes)
    for node in args.dht_node:
        ses.add_dht_node(parse_peer(node))
    if args.magnet:
        atp = lt.parse_magnet_uri(args.magnet)
    else:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(args.torrent)
    atp.save_path = os.path.abspath(args.save_path)
    atp.flags &= ~lt.torrent_flags.auto_managed
    atp.flags &= ~lt.torrent_flags.paused
    handle = ses.add_torrent(atp)
    peers = [parse_peer(p) for p in args.peer]
    checking = {"checking_files", "checking_resume_data"}
    last_dial = 0.0
    while True:
        status = handle.status()
        state = str(status.state)
        line = json.loads(status_line(status))
        peer_info = handle.get_peer_info()
        line["peer_addrs"] = ["%s:%d" % (p.ip[0], p.ip[1]) for p in peer_info]
        line["rc4_peers"] = sum(1 for p in peer_info if p.flags & lt.peer_info.rc4_encrypted)
        try:
            line["dht_nodes"] = ses.status().dht_nodes
        except AttributeError:
            line["dht_nodes"] = None
        print(json.dumps(line), flush=True)
        if args.mode == "seed" and state not in checking and not status.is_seeding:
            print("seed: data under %s is not complete (progress %.4f)"
                  % (atp.save_path, status.progress), file=sys.stderr, flush=True)
            sys.exit(3)
        now = time.monotonic()
        if (peers or args.peers_file) and state not in checking and now - last_dial >= 1.0:
            last_dial = now
            wanted = peers + (peers_from_file(args.peers_file) if args.peers_file else [])
            connected = {tuple(p.ip) for p in handle.get_peer_info()}
            for peer in wanted:
                if peer not in connected:
                    handle.connect_peer(peer)
        for alert in ses.pop_alerts():
            print("[alert] %s: %s" % (alert.what(), alert.message()), file=sys.stderr,
                  flush=True)
        time.sleep(args.interval)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)

    info = sub.add_parser("info")
    info.add_argument("torrent")
    info.set_defaults(func=cmd_info)

    create = sub.add_parser("create")
    create.add_argument("path")
    create.add_argument("out")
    create.add_argument("piece_len", nargs="?", type=int, default=0)
    create.add_argument("--tracker", action="append", default=[])
    create.add_argument("--comment")
    create.add_argument("--private", action="store_true")
    create.set_defaults(func=cmd_create)

    for mode in ("seed", "download"):
        session = sub.add_parser(mode)
        source = session.add_mutually_exclusive_group(required=True)
        source.add_argument("--torrent")
        source.add_argument("--magnet")
        session.add_argument("--listen-ip", default="127.0.0.1")
        session.add_argument("--dht-node", action="append", default=[])
        session.add_argument("--save-path", required=True)
        session.add_argument("--port", type=int, required=True)
        session.add_argument("--peer", action="append", default=[])
        session.add_argument("--peers-file")
        session.add_argument("--upload-limit", type=int, default=0)
        session.add_argument("--encryption", choices=["default", "forced"], default="default")
        session.add_argument("--interval", type=float, default=0.2)
        session.set_defaults(func=cmd_session)

    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()

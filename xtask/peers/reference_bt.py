#!/usr/bin/python3
"""A stand-in for `bt`, built on libtorrent, that implements the CLI contract the
fixture scenarios assume. It exists to test the scenarios themselves (a scenario that
cannot pass, or cannot fail, is a defect):

    cargo xtask fixture-test --bt xtask/peers/reference_bt.py bt-

The contract (see xtask/src/peers/bt.rs):
  info <file.torrent> [--json]          --json prints {"info_hash": hex, "name": ...}
  create <path> -o <out.torrent> [--tracker URL]... [--piece-length BYTES] [--private]
         [--comment TEXT] [--web-seed URL]...
  download <file.torrent> [-o DIR] [--peer IP:PORT]... [--listen ADDR] [--seed]
                                        exits 0 only once complete and verified
  seed <file.torrent> <DATA_DIR> [--listen ADDR] [--peer IP:PORT]...
                                        prints `uploaded: <payload bytes>` on SIGINT/SIGTERM
  verify <file.torrent> <DATA_DIR>      exits 0 if every piece is intact, 1 otherwise
DATA_DIR and -o DIR are the folder that holds the torrent's name.
"""

import argparse
import hashlib
import json
import os
import signal
import sys
import time

import libtorrent as lt

CHECKING = {"checking_files", "checking_resume_data"}


def cmd_info(args):
    ti = lt.torrent_info(args.torrent)
    facts = {
        "info_hash": str(ti.info_hashes().v1),
        "name": ti.name(),
        "piece_length": ti.piece_length(),
        "num_pieces": ti.num_pieces(),
        "total_size": ti.total_size(),
    }
    if args.json:
        print(json.dumps(facts))
    else:
        for key, value in facts.items():
            print("%s: %s" % (key, value))


def cmd_create(args):
    path = os.path.abspath(args.path)
    fs = lt.file_storage()
    lt.add_files(fs, path)
    ct = lt.create_torrent(fs, args.piece_length, flags=lt.create_torrent.v1_only)
    for tier, url in enumerate(args.tracker):
        ct.add_tracker(url, tier)
    for url in args.web_seed:
        ct.add_url_seed(url)
    if args.comment is not None:
        ct.set_comment(args.comment)
    if args.private:
        ct.set_priv(True)
    lt.set_piece_hashes(ct, os.path.dirname(path))
    with open(args.output, "wb") as out:
        out.write(lt.bencode(ct.generate()))


def cmd_verify(args):
    ti = lt.torrent_info(args.torrent)
    fs = ti.files()
    sha, filled, piece = hashlib.sha1(), 0, 0
    plen = ti.piece_length()
    ok = True

    def finish_piece():
        nonlocal sha, filled, piece, ok
        expected = ti.hash_for_piece(piece)
        if not isinstance(expected, bytes):
            expected = bytes.fromhex(str(expected))
        if sha.digest() != expected:
            ok = False
        sha, filled, piece = hashlib.sha1(), 0, piece + 1

    for i in range(fs.num_files()):
        path = os.path.join(args.data_dir, fs.file_path(i))
        size = fs.file_size(i)
        try:
            f = open(path, "rb")
        except OSError:
            return 1
        with f:
            left = size
            while left > 0:
                chunk = f.read(min(left, plen - filled))
                if not chunk:
                    return 1
                sha.update(chunk)
                filled += len(chunk)
                left -= len(chunk)
                if filled == plen:
                    finish_piece()
    if filled:
        finish_piece()
    return 0 if ok else 1


def start_session(args, save_path):
    listen = args.listen or "127.0.0.1:0"
    ses = lt.session({
        "listen_interfaces": listen,
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False,
        "enable_natpmp": False, "enable_outgoing_utp": False, "enable_incoming_utp": False,
        "allow_multiple_connections_per_ip": True, "min_reconnect_time": 1,
        "peer_connect_timeout": 3, "smooth_connects": False, "unchoke_slots_limit": -1,
    })
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(args.torrent)
    atp.save_path = os.path.abspath(save_path)
    atp.flags &= ~lt.torrent_flags.auto_managed
    atp.flags &= ~lt.torrent_flags.paused
    handle = ses.add_torrent(atp)
    return ses, handle


def dial(handle, peers):
    connected = {tuple(p.ip) for p in handle.get_peer_info()}
    for peer in peers:
        host, _, port = peer.rpartition(":")
        if (host, int(port)) not in connected:
            handle.connect_peer((host, int(port)))


def cmd_download(args):
    ses, handle = start_session(args, args.output or ".")
    while True:
        status = handle.status()
        if str(status.state) not in CHECKING:
            if status.is_seeding and not args.seed:
                return 0
            dial(handle, args.peer)
        time.sleep(0.5)


def cmd_seed(args):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    ses, handle = start_session(args, args.data_dir)
    while not stop:
        status = handle.status()
        if str(status.state) not in CHECKING:
            if not status.is_seeding:
                print("seed: data is incomplete", file=sys.stderr)
                return 1
            dial(handle, args.peer)
        time.sleep(0.2)
    print("uploaded: %d" % handle.status().total_payload_upload, flush=True)
    return 0


def main():
    parser = argparse.ArgumentParser(prog="bt")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info")
    p.add_argument("torrent")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("create")
    p.add_argument("path")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--tracker", action="append", default=[])
    p.add_argument("--piece-length", type=int, default=0)
    p.add_argument("--private", action="store_true")
    p.add_argument("--comment")
    p.add_argument("--web-seed", action="append", default=[])
    p.set_defaults(func=cmd_create)
    p = sub.add_parser("download")
    p.add_argument("torrent")
    p.add_argument("-o", "--output")
    p.add_argument("--peer", action="append", default=[])
    p.add_argument("--listen")
    p.add_argument("--seed", action="store_true")
    p.set_defaults(func=cmd_download)
    p = sub.add_parser("seed")
    p.add_argument("torrent")
    p.add_argument("data_dir")
    p.add_argument("--listen")
    p.add_argument("--peer", action="append", default=[])
    p.set_defaults(func=cmd_seed)
    p = sub.add_parser("verify")
    p.add_argument("torrent")
    p.add_argument("data_dir")
    p.set_defaults(func=cmd_verify)
    args = parser.parse_args()
    sys.exit(args.func(args) or 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Builds the benchmark's mail: bench/run.sh calls it once per run.

    mkfixtures.py DIR NUSERS MAIL_UID MAIL_GID

writes into DIR:
  msgs/        the message files, each written once
  ours/USER/{cur,new,tmp}   the mail root of bin/pop3server
  dove/USER/{cur,new,tmp}   the mail root of Dovecot (same files: hard links)
  sizes.json   file and wire sizes (CRLF line ends, dot-stuffing undone)

Users and their maildrops:
  u0 .. u{NUSERS-1}  two small messages (sessions, storm, hold, fair probes)
  r0 .. r3           one 1 MiB message (retr 1 MB, 4 clients)
  huge               one 100 MiB message (retr 100 MB)
  giant              one 1 GiB message (fair)
  many               10,000 messages of 1-8 KiB (list)

Maildir names carry no ,S= or ,W= size hints, as a generic MDA writes
them, so both servers have to read a message to know its POP3 size.
Every file ends with LF; a few body lines start with "." so RETR has to
byte-stuff.  The big files are one 1 MiB block repeated; Dovecot's tree
is owned by MAIL_UID:MAIL_GID (its mail processes never run as root).
"""
import json
import os
import random
import sys

WORDS = ("the of and to in is that for it as was with be by on not he "
         "this are or his from at which but have an they you were her "
         "all she there would their we him been has when who will more "
         "no if out so said what up its about into than them can only "
         "other new some could time these two may then do first any my "
         "now such like our over man me even most made after also did "
         "many before must through back years where much your way well "
         "down should because each just those people mr how too little "
         "state good very make world still own see men work long get "
         "here between both life being under never day same another "
         "know while last might us great old year off come since "
         "against go came right used take three").split()

HEADER = ("Return-Path: <sender@example.org>\n"
          "Delivered-To: {to}@example.net\n"
          "Received: from mx.example.org (mx.example.org [192.0.2.25])\n"
          "\tby mail.example.net with ESMTP id {n:08x}\n"
          "\tfor <{to}@example.net>; Mon, 2 Sep 2024 10:00:00 +0000\n"
          "From: Sender Name <sender@example.org>\n"
          "To: {to}@example.net\n"
          "Subject: benchmark message {n}\n"
          "Date: Mon, 2 Sep 2024 10:00:00 +0000\n"
          "Message-ID: <{n:08x}.{to}@example.org>\n"
          "MIME-Version: 1.0\n"
          "Content-Type: text/plain; charset=us-ascii\n"
          "\n")


def text_lines(rng, nbytes):
    """Body text of about nbytes: lines of words up to 72 columns;
    every 97th line starts with a dot (byte-stuffed on the wire)."""
    out, size, k = [], 0, 0
    while size < nbytes:
        words, width = [], 0
        while width < 60:
            w = rng.choice(WORDS)
            words.append(w)
            width += len(w) + 1
        line = " ".join(words)
        k += 1
        if k % 97 == 0:
            line = "." + line
        line += "\n"
        out.append(line)
        size += len(line)
    return "".join(out)


def block_mib(rng):
    """Exactly 1 MiB of whole lines."""
    body = text_lines(rng, 1024 * 1024 - 200)
    cut = body.rfind("\n", 0, 1024 * 1024 - 100) + 1
    body = body[:cut]
    pad = 1024 * 1024 - len(body)
    body += "x" * (pad - 1) + "\n"
    assert len(body) == 1024 * 1024
    return body.encode()


def wire_size(data):
    """POP3 payload bytes: LF becomes CRLF (the files hold no CR)."""
    return len(data) + data.count(b"\n")


def write_big(path, header, block, mib):
    with open(path, "wb") as f:
        f.write(header)
        for _ in range(mib):
            f.write(block)
    lf = header.count(b"\n") + block.count(b"\n") * mib
    size = len(header) + len(block) * mib
    return {"file": size, "wire": size + lf}


def maildir(root, user):
    d = os.path.join(root, user)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    return os.path.join(d, "cur")


def link_into(src, curdirs, name):
    for cur in curdirs:
        os.link(src, os.path.join(cur, name))


def main():
    top, nusers, uid, gid = sys.argv[1], int(sys.argv[2]), \
        int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(1939)
    msgs = os.path.join(top, "msgs")
    ours, dove = os.path.join(top, "ours"), os.path.join(top, "dove")
    for d in (msgs, ours, dove):
        os.makedirs(d, exist_ok=True)
    sizes = {}
    t0 = 1725271200

    def name(i, tag):
        return "%d.M%dP1939.bench%s:2," % (t0 + i, i, tag)

    # Two small messages shared (hard links) by every u* maildrop.
    small = []
    for i, n in enumerate((1200, 3500)):
        data = (HEADER.format(to="user", n=i) + text_lines(rng, n)).encode()
        p = os.path.join(msgs, "small%d" % i)
        with open(p, "wb") as f:
            f.write(data)
        small.append(p)
    sizes["small"] = [wire_size(open(p, "rb").read()) for p in small]
    for u in range(nusers):
        user = "u%d" % u
        curs = (maildir(ours, user), maildir(dove, user))
        for i, p in enumerate(small):
            link_into(p, curs, name(i, "s"))

    block = block_mib(rng)
    big = [("m1mb", 1, ["r0", "r1", "r2", "r3"]),
           ("m100mb", 100, ["huge"]),
           ("m1gb", 1024, ["giant"])]
    for tag, mib, users in big:
        p = os.path.join(msgs, tag)
        hdr = HEADER.format(to=users[0], n=mib).encode()
        sizes[tag] = write_big(p, hdr, block, mib)
        for user in users:
            link_into(p, (maildir(ours, user), maildir(dove, user)), name(0, tag))

    # The 10,000-message maildrop: distinct files of 1-8 KiB.
    curs = (maildir(ours, "many"), maildir(dove, "many"))
    pool = text_lines(rng, 2 * 1024 * 1024)
    total = 0
    for i in range(10000):
        n = rng.randint(1024, 8192)
        start = rng.randint(0, len(pool) - 9000)
        start = pool.index("\n", start) + 1
        end = pool.index("\n", start + n) + 1
        data = (HEADER.format(to="many", n=i) + pool[start:end]).encode()
        p = os.path.join(msgs, "many-%05d" % i)
        with open(p, "wb") as f:
            f.write(data)
        link_into(p, curs, name(i, "m"))
        total += wire_size(data)
    sizes["many"] = {"messages": 10000, "wire": total}

    # Dovecot's tree (and so every linked file) belongs to the mail user.
    for dirpath, dirnames, filenames in os.walk(dove):
        os.chown(dirpath, uid, gid)
        for f in filenames:
            os.chown(os.path.join(dirpath, f), uid, gid)
    with open(os.path.join(top, "sizes.json"), "w") as f:
        json.dump(sizes, f, indent=1)
    # Read every message once now: the first read after a write updates
    # the access time (relatime), and that cost must not fall on
    # whichever server happens to read a file first.
    for name in sorted(os.listdir(msgs)):
        with open(os.path.join(msgs, name), "rb") as f:
            while f.read(1 << 20):
                pass


if __name__ == "__main__":
    main()

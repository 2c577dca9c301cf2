#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ from the captures
and mail logs the project has (captures/*/, ../shared/captures/public/, ../shared/maillogs/),
in the input formats that fuzz/src/lib.rs documents for each target.

Small on purpose (a few hundred KB in all): the fuzzer grows its own corpus elsewhere. The
committed corpus is this script's output reduced to the seeds that add coverage:

    cd fuzz && for t in $(ls corpus); do mkdir -p /tmp/min/$t
      ./target/x86_64-unknown-linux-gnu/release/$t -merge=1 /tmp/min/$t corpus/$t; done
    # then keep only the files of corpus/$t whose SHA-1 names a file in /tmp/min/$t

Run from anywhere: python3 fuzz/make-corpus.py [--force]
"""

import gzip
import hashlib
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
OUT = os.path.join(HERE, "corpus")

# Largest capture (bytes) taken as a seed as it is; bigger ones are cut to their first records.
MAX_CAPTURE = 4 * 1024
MAX_LOG = 6 * 1024


def put(target, data, tag=""):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = (tag + "-" if tag else "") + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def captures():
    """(tag, bytes) of every capture, local cases first."""
    out = []
    cases = os.path.join(ROOT, "captures")
    for c in sorted(os.listdir(cases)):
        p = os.path.join(cases, c, "capture.pcap")
        if os.path.exists(p):
            out.append((c, read(p)))
    pub = os.path.join(SHARED, "captures", "public")
    for f in sorted(os.listdir(pub)):
        if f.endswith((".pcap", ".pcapng")):
            out.append((f.rsplit(".", 1)[0], read(os.path.join(pub, f))))
    return out


def pcap_records(data):
    """(link type, [(ts_sec, ts_usec, record bytes)]) of a little- or big-endian pcap."""
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        return None, []
    lt = struct.unpack(e + "I", data[20:24])[0] & 0x03FFFFFF
    off, recs = 24, []
    while off + 16 <= len(data):
        sec, usec, incl, _orig = struct.unpack(e + "IIII", data[off : off + 16])
        rec = data[off + 16 : off + 16 + incl]
        if len(rec) < incl:
            break
        recs.append((sec, usec, rec))
        off += 16 + incl
    return lt, recs


def cut_pcap(data, limit):
    """The pcap header and as many whole records as fit in `limit` bytes."""
    if len(data) <= limit:
        return data
    lt, recs = pcap_records(data)
    if lt is None:
        return data[:limit]
    e = "<" if data[:1] in (b"\xd4", b"\x4d") else ">"
    out = bytearray(data[:24])
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(e + "I", data[off + 8 : off + 12])[0]
        if len(out) + 16 + incl > limit:
            break
        out += data[off : off + 16 + incl]
        off += 16 + incl
    return bytes(out)


LINK_TYPES = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 127, 0xFFFFFFFF]


def ip_of(lt, rec):
    """The IP packet inside a record of link type `lt`, or None."""
    if lt == 1:
        et, at = struct.unpack(">H", rec[12:14])[0], 14
        while et in (0x8100, 0x88A8) and at + 4 <= len(rec):
            et, at = struct.unpack(">H", rec[at + 2 : at + 4])[0], at + 4
        return rec[at:] if et in (0x0800, 0x86DD) else None
    if lt == 113:
        return rec[16:]
    if lt == 276:
        return rec[20:]
    if lt in (101, 12, 14, 228, 229):
        return rec
    if lt in (0, 108):
        return rec[4:]
    return None


def tcp_of(ip):
    """(src, dst, sport, dport, seq, ack, flags, payload) of an IPv4/IPv6 TCP packet."""
    if not ip:
        return None
    v = ip[0] >> 4
    if v == 4:
        ihl = (ip[0] & 15) * 4
        if ip[9] != 6:
            return None
        total = struct.unpack(">H", ip[2:4])[0]
        src, dst, seg = ip[12:16], ip[16:20], ip[ihl:total]
    elif v == 6:
        if ip[6] != 6:
            return None
        plen = struct.unpack(">H", ip[4:6])[0]
        src, dst, seg = ip[8:24], ip[24:40], ip[40 : 40 + plen]
    else:
        return None
    if len(seg) < 20:
        return None
    sport, dport, seq, ack = struct.unpack(">HHII", seg[:12])
    off = (seg[12] >> 4) * 4
    return src, dst, sport, dport, seq, ack, seg[13], seg[off:]


def conversations(data):
    """TCP packets of a pcap in order, as tcp_of tuples with timestamps."""
    lt, recs = pcap_records(data)
    out = []
    for sec, usec, rec in recs:
        t = tcp_of(ip_of(lt, rec))
        if t:
            out.append((sec * 1_000_000 + usec, t))
    return out


def flows_input(pkts, limit=2048):
    """The tcp_flows input format: endpoints mapped onto the target's hosts and ports."""
    out = bytearray([0])
    hosts, ports = {}, {}
    last = None
    for ts, (src, dst, sp, dp, seq, ack, flags, payload) in pkts:
        for h in (src, dst):
            hosts.setdefault(h, len(hosts) % 4)
        # Server ports to 25 (index 0), client ports to 50000 (index 1).
        for p in (sp, dp):
            ports.setdefault(p, 0 if p in (25, 587, 2525, 465) else 1)
        ends = hosts[src] | hosts[dst] << 2 | ports[sp] << 4 | ports[dp] << 6
        f = (flags & 0x01) | (flags & 0x02) | (flags & 0x04) | (flags & 0x08) | (flags & 0x10)
        f |= 0x20  # absolute sequence numbers
        f |= 0x40  # payload from the input
        payload = payload[:255]
        out += bytes([ends, f]) + struct.pack("<II", seq, ack) + bytes([len(payload)]) + payload
        step = 0 if last is None else max(-29_000, min(29_000, (ts - last) // 1000))
        last = ts
        out += struct.pack("<h", step) + bytes([64])
        if len(out) > limit:
            break
    return bytes(out)


def smtp_input(pkts, limit=2048):
    """The smtp_session input format: each payload as a chunk of its side."""
    out = bytearray()
    client = None
    for _ts, (src, dst, sp, dp, _s, _a, flags, payload) in pkts:
        if client is None and flags & 0x12 == 0x02:
            client = (src, sp)
        if client is None:
            client = (src, sp) if dp in (25, 587, 2525, 465) else (dst, dp)
        side = 0 if (src, sp) == client else 1
        for i in range(0, len(payload), 255):
            chunk = payload[i : i + 255]
            out += bytes([side | (1 << 3), len(chunk)]) + chunk
        if len(out) > limit:
            break
    return bytes(out)


def logs():
    out = []
    cases = os.path.join(ROOT, "captures")
    for c in sorted(os.listdir(cases)):
        p = os.path.join(cases, c, "mail_logs")
        if os.path.exists(p):
            out.append((c, read(p)))
    for sub in ("public", "technote"):
        d = os.path.join(SHARED, "maillogs", sub)
        for f in sorted(os.listdir(d)):
            if f.endswith(".log"):
                out.append((f.rsplit(".", 1)[0], read(os.path.join(d, f))))
    return out


def main():
    if os.path.isdir(OUT) and "--force" not in sys.argv:
        sys.exit(f"{OUT} exists; remove it or pass --force")
    caps = captures()
    seen_logs = set()
    for tag, data in caps:
        small = cut_pcap(data, MAX_CAPTURE)
        put("capture_read", b"\x00" + small, tag)
        lt, recs = pcap_records(data)
        if lt is not None:
            # A few records of each capture for the decoder, with the capture's link type.
            for _s, _u, rec in recs[:4]:
                put("capture_decode", bytes([LINK_TYPES.index(lt) if lt in LINK_TYPES else 1]) + rec[:256], tag)
            pkts = conversations(data)
            if pkts:
                put("tcp_flows", flows_input(pkts), tag)
                put("smtp_session", smtp_input(pkts), tag)
    # Variants: gzip, merged twice, another link type written into the header.
    first = cut_pcap(caps[0][1], 8 * 1024)
    put("capture_read", b"\x10" + first, "gzip")
    put("capture_read", b"\x20" + first, "twice")
    put("capture_read", b"\x07" + first, "linktype")
    put("capture_read", b"\x00" + gzip.compress(first), "gz-file")
    for tag, text in logs():
        text = text[:MAX_LOG]
        if text in seen_logs:
            continue
        seen_logs.add(text)
        put("maillog_parse", b"\x00" + text, tag)
    put("maillog_parse", b"\x01" + logs()[0][1][:4096], "short-lines")
    # The whole analysis: each case's capture with its log.
    cases = os.path.join(ROOT, "captures")
    for c in sorted(os.listdir(cases)):
        p, l = os.path.join(cases, c, "capture.pcap"), os.path.join(cases, c, "mail_logs")
        if os.path.exists(p) and os.path.exists(l):
            cap = cut_pcap(read(p), 3 * MAX_CAPTURE)
            put("analyze", struct.pack("<I", len(cap)) + cap + read(l)[:4096], c)
    # The assembler: a few hand-made operation lists.
    put("tcp_assembler", bytes([0, 0, 0, 0, 10, 1, 0, 10, 0, 5, 2, 7, 0x87, 40, 0]))
    put("tcp_assembler", bytes([1, 0, 100, 0, 60, 3, 0, 0, 0, 50, 4, 7]))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""expected.json for the middlebox / TLS cases (make-firewall.sh): expected.py's facts and
verdict rules, plus middlebox evidence ("findings") and a second capture per case.

    fw_expected.py --case NAME --dir captures/NAME --sessions S.jsonl --intent I.jsonl \
                   --tz-offset N --skew N [--port 25] [--inspect-log L.jsonl]
    fw_expected.py --describe captures/NAME/expected.json      # Markdown summary for the README

Everything is read from the captures with tshark (`-T fields`): per packet the addresses,
ports, flags, raw sequence and acknowledgement numbers, payload, TTL, IPv4 ID, IP length and
window; ICMP "fragmentation needed" with the packet it quotes; tshark's own retransmission
analysis as a cross-check. Streams are reassembled as in expected.py (which this imports).

The verdict is expected.py's (docs/design.md), with one addition from design.md: when the
FIN or RST that ended the session was not sent by the endpoint whose address it carries (its
TTL differs from every other packet of that endpoint), the initiator is `middlebox` and the
cause `forged_rst` / `forged_fin` (layer network). For capture-client.pcap (taken at the
client) the client's stream is cut at what the server acknowledged: bytes that never reached
the server cannot have moved its SMTP session on.

Findings (kind, side = the endpoint the packets concerned claim to come from, frame):
  forged_rst / forged_fin  RST / FIN whose TTL is out of line with that endpoint's other packets
                           (frame: the RST/FIN)
  data_after_rst           payload from an endpoint after its own (claimed) RST (frame: the
                           first such packet)
  rst_race                 two or more RSTs in one endpoint's name with different sequence numbers
  banner_masked            banner text all '*' (frame: the banner)
  esmtp_keyword_masked     an EHLO reply keyword of X's (frame: the EHLO reply; one per keyword)
  command_masked           a client command line of X's only (frame: the command)
  char_per_segment         five or more one-byte client segments (frame: the first)
  mtu_black_hole           an endpoint's largest (>= 1000-byte) segments sent again and again
                           (3+ retransmissions), never acknowledged, and no ICMP "fragmentation
                           needed" for them in the capture (frame: the first such transmission)
  icmp_frag_needed         ICMP type 3 code 4 quoting a packet of the connection (side: the
                           endpoint whose packet was too big; frame: the first ICMP)
  data_stall               the server's 354 was followed by no complete message data and the
                           session ended in the idle timeout (frame: the 354)
  zero_window              an endpoint advertised a zero window (frame: the first)
  tls_alert_before_close   a TLS alert record from an endpoint before its own FIN/RST (frame:
                           the alert)
  tls_handshake_failed     TLS started but no ChangeCipherSpec both ways, and an alert
                           (side: its sender; frame: the alert)
  line_length_limit        the first FIN/RST (forged, or from the server) came within 2 s of a
                           client command line over 512 octets (CRLF included), complete and
                           unanswered or still without its line end (frame: the FIN/RST)
  recipient_limit          the same after the client's 2nd or later RCPT of a transaction,
                           unanswered, the ones before it answered
  header_length_limit      the same inside message data (after 354, no final reply) after a
                           header section over 8,192 octets or a header line over 998
The limit findings read the client's whole stream, also the bytes the server never
acknowledged (on the client's side they are what the firewall saw).
Each finding carries `evidence` (the numbers behind it). The findings are checked against
the ones the client scenario (fw_clients.py) expected, per capture; any difference, or any
other disagreement with the intent, the server's ground truth or tshark, is an error (exit 1).

Python 3.11 standard library only (plus tshark and capinfos).
"""
import argparse
import json
import sys
from collections import Counter

import expected as E

EXTRA = ["ip.id", "ip.len", "tcp.ack_raw", "tcp.window_size_value"]
FIELDS = E.FIELDS + EXTRA
ALERT_LEVEL = {1: "warning", 2: "fatal"}
ALERT_DESC = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 40: "handshake_failure",
              42: "bad_certificate", 47: "illegal_parameter", 48: "unknown_ca", 50: "decode_error",
              51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security",
              80: "internal_error", 90: "user_canceled", 112: "unrecognized_name"}
HS_TYPE = {1: "client_hello", 2: "server_hello", 11: "certificate", 12: "server_key_exchange",
           14: "server_hello_done", 16: "client_key_exchange", 4: "new_session_ticket"}
CT = {20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data"}


def hexid(v):
    return None if v is None else f"0x{v:04x}"


# --- packets ------------------------------------------------------------------------------

def read_packets(pcap):
    out = E.tshark(["-r", pcap, "-Y", "tcp && !icmp && !icmpv6", "-T", "fields", "-E", "separator=\t",
                    "-E", "occurrence=f"] + sum((["-e", f] for f in FIELDS), []))
    flows = {}
    for line in out.splitlines():
        v = dict(zip(FIELDS, line.split("\t")))
        p = {
            "frame": int(v["frame.number"]),
            "time": float(v["frame.time_epoch"]),
            "time_s": v["frame.time_epoch"],
            "src": v["ip.src"] or v["ipv6.src"],
            "dst": v["ip.dst"] or v["ipv6.dst"],
            "sport": int(v["tcp.srcport"]),
            "dport": int(v["tcp.dstport"]),
            "syn": E.flag(v["tcp.flags.syn"]),
            "ack": E.flag(v["tcp.flags.ack"]),
            "fin": E.flag(v["tcp.flags.fin"]),
            "rst": E.flag(v["tcp.flags.reset"]),
            "seq": int(v["tcp.seq_raw"]),
            "ackno": int(v["tcp.ack_raw"] or 0),
            "len": int(v["tcp.len"] or 0),
            "payload": bytes.fromhex(v["tcp.payload"].replace(":", "")) if v["tcp.payload"] else b"",
            "ttl": int(v["ip.ttl"] or v["ipv6.hlim"]),
            "ip_id": int(v["ip.id"], 0) if v["ip.id"] else None,
            "ip_len": int(v["ip.len"]) if v["ip.len"] else None,
            "win": int(v["tcp.window_size_value"] or 0),
        }
        if len(p["payload"]) != p["len"]:
            raise SystemExit(f"frame {p['frame']}: payload length {len(p['payload'])} != tcp.len {p['len']}")
        flows.setdefault(int(v["tcp.stream"]), E.Flow(int(v["tcp.stream"]))).pkts.append(p)
    for f in flows.values():
        f.finish()
    return sorted(flows.values(), key=lambda f: (f.pkts[0]["time"], f.pkts[0]["frame"]))


def read_icmp(pcap):
    """ICMP 'fragmentation needed' (and ICMPv6 'packet too big') with the quoted 4-tuple."""
    fields = ["frame.number", "frame.time_epoch", "ip.src", "ip.dst", "icmp.mtu", "ip.len",
              "tcp.srcport", "tcp.dstport", "ip.ttl"]
    out = E.tshark(["-r", pcap, "-Y", "(icmp.type == 3 && icmp.code == 4)", "-T", "fields",
                    "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
                   + sum((["-e", f] for f in fields), []))
    res = []
    for line in out.splitlines():
        v = dict(zip(fields, line.split("\t")))
        src, dst = v["ip.src"].split(","), v["ip.dst"].split(",")
        lens = v["ip.len"].split(",")
        ttls = v["ip.ttl"].split(",")
        res.append({"frame": int(v["frame.number"]), "time": float(v["frame.time_epoch"]),
                    "from": src[0], "to": dst[0], "mtu": int(v["icmp.mtu"]),
                    "ttl": int(ttls[0]),
                    "quoted": {"src": src[1], "dst": dst[1], "sport": int(v["tcp.srcport"]),
                               "dport": int(v["tcp.dstport"]), "ip_len": int(lens[1])}})
    return res


def tshark_retrans(pcap, port):
    args = ["-r", pcap]
    if port != 25:
        args += ["-d", f"tcp.port=={port},tls"]
    out = E.tshark(args + ["-Y", "tcp.analysis.retransmission || tcp.analysis.fast_retransmission",
                           "-T", "fields", "-e", "frame.number"])
    return {int(x) for x in out.split()}


def span_frames(flow, side):
    """[(start, end, frame)] of one direction, first copy of each byte wins (as E.Flow)."""
    pk = [p for p in flow.pkts if p["side"] == side]
    syn = next((p for p in pk if p["syn"]), None)
    base = (syn["seq"] + 1) if syn else min((p["seq"] for p in pk if p["len"]), default=0)
    segs = sorted((((p["seq"] - base) % (1 << 32), p) for p in pk if p["len"]),
                  key=lambda x: (x[0], x[1]["frame"]))
    spans, have = [], 0
    for off, p in segs:
        if off > have:
            break
        if off + p["len"] > have:
            spans.append((off, off + p["len"], p["frame"]))
            have = off + p["len"]
    return base, spans


def frame_at(spans, offset):
    for start, end, frame in spans:
        if start <= offset < end:
            return frame
    return None


def cut_to_acked(flow, side):
    """Keep only the bytes of `side` that the other side acknowledged (client-side captures)."""
    other = "server" if side == "client" else "client"
    base, _ = span_frames(flow, side)
    acks = [(p["ackno"] - base) % (1 << 32) for p in flow.pkts
            if p["side"] == other and p["ack"] and not p["rst"]]
    acked = max((a for a in acks if a < (1 << 31)), default=0)
    unacked = max(0, len(flow.data[side]) - acked)
    flow.data[side] = flow.data[side][:acked]
    return unacked


# --- SMTP (expected.py's walker, with frames, and no 354 invented for an unanswered DATA) ---

class Smtp(E.Smtp):
    def __init__(self, flow, implicit_tls=False):
        self.implicit_tls = implicit_tls
        self.replies = []     # {code, lines, start, end}: offsets in the server stream
        self.commands = []    # {line, start, end, reply}: offsets in the client stream
        self.tls_recs = {"client": [], "server": []}
        super().__init__(flow)

    def next_reply(self):
        start = self.spos
        r = super().next_reply()
        if r is not None:
            text = self.s[start:self.spos].decode("latin-1")
            rep = {"code": r[0], "lines": text.rstrip("\r\n").split("\r\n"), "start": start,
                   "end": self.spos - 1}
            self.replies.append(rep)
            if self.commands and self.commands[-1]["reply"] is None:
                self.commands[-1]["reply"] = rep
        return r

    def next_line(self):
        start = self.cpos
        r = super().next_line()
        if r is not None:
            self.commands.append({"line": r[0], "start": start, "end": self.cpos - 1, "reply": None})
        return r

    def run(self):
        if self.implicit_tls:
            self.phase = "tls"
            self.read_tls()
            return
        if self.next_reply() is None:
            return
        while True:
            got = self.next_line()
            if got is None:
                break
            line, t = got
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            self.last_command = line
            if verb in ("EHLO", "HELO"):
                self.next_reply()
                self.open_tx = False
                if self.phase in ("banner", "greeting", "envelope"):
                    self.phase = "greeting"
            elif verb == "MAIL":
                self.transactions += 1
                self.phase = "envelope"
                r = self.next_reply()
                self.open_tx = bool(r and 200 <= r[0] < 300)
            elif verb == "DATA":
                r = self.next_reply()
                if r is None:
                    break                      # DATA never answered: still in the envelope
                if r[0] == 354:
                    self.phase = "data"
                    end = self.c.find(b"\r\n.\r\n", self.cpos - 2)
                    if end < 0:
                        self.cpos = len(self.c)
                        break
                    self.cpos = end + 5
                    self.phase = "after_data"
                    r = self.next_reply()
                    if r is None:
                        break
                    self.finish_tx(r[0])
            elif verb == "RSET":
                if self.open_tx:
                    self.last_tx_end = "rset"
                self.open_tx = False
                self.phase = "greeting" if self.phase != "banner" else "banner"
                self.next_reply()
            elif verb == "QUIT":
                self.quit = True
                self.quit_at = t
                self.phase = "quit"
                self.next_reply()
            elif verb == "STARTTLS":
                r = self.next_reply()
                if r and r[0] == 220:
                    self.starttls = True
                    self.phase = "tls"
                    self.read_tls()
                    return
            else:
                self.next_reply()
        while True:
            r = self.next_reply()
            if r is None:
                break
            self.unprompted.append(r)

    def read_tls(self):
        for side, pos in (("client", self.cpos), ("server", self.spos)):
            data = self.f.data[side]
            ccs_seen = False
            while pos + 5 <= len(data):
                ctype, length = data[pos], int.from_bytes(data[pos + 3:pos + 5], "big")
                end = pos + 5 + length
                t = self.f.time_at(side, min(end, len(data)) - 1)
                self.tls_records[side].append((ctype, length, t, end <= len(data)))
                frag = data[pos + 5:end]
                rec = {"type": CT.get(ctype, str(ctype)), "length": length, "start": pos,
                       "end": min(end, len(data)) - 1, "time": t, "complete": end <= len(data),
                       "encrypted": ccs_seen and ctype != 20}
                if ctype == 22 and not ccs_seen and frag:
                    rec["handshake"] = HS_TYPE.get(frag[0], str(frag[0]))
                if ctype == 21 and not ccs_seen and len(frag) >= 2:
                    rec["level"] = ALERT_LEVEL.get(frag[0], str(frag[0]))
                    rec["description"] = ALERT_DESC.get(frag[1], str(frag[1]))
                if ctype == 20:
                    ccs_seen = True
                self.tls_recs[side].append(rec)
                pos = end


# --- middlebox evidence -----------------------------------------------------------------------

def side_ttl(flow, side):
    c = Counter(p["ttl"] for p in flow.pkts if p["side"] == side and not p["rst"])
    return c.most_common(1)[0][0] if c else None


def end_packets(flow):
    """Every FIN and RST with the facts that tell the endpoint from a device in the path."""
    res = []
    for side in ("client", "server"):
        ref = side_ttl(flow, side)
        own = [p for p in flow.pkts if p["side"] == side]
        for p in own:
            if not (p["fin"] or p["rst"]):
                continue
            before = [q for q in own if q["frame"] < p["frame"] and not q["rst"] and q["ip_id"]]
            after = [q for q in own if q["frame"] > p["frame"] and not q["rst"] and q["ip_id"]]
            prev_id = before[-1]["ip_id"] if before else None
            next_id = after[0]["ip_id"] if after else None
            in_line = None
            if p["ip_id"] is not None and prev_id is not None:
                in_line = 0 < (p["ip_id"] - prev_id) % 65536 <= 32
            res.append({
                "frame": p["frame"], "side": side, "flag": "rst" if p["rst"] else "fin",
                "time": p["time"], "time_s": p["time_s"], "ttl": p["ttl"], "endpoint_ttl": ref,
                "ip_id": hexid(p["ip_id"]), "endpoint_prev_ip_id": hexid(prev_id),
                "endpoint_next_ip_id": hexid(next_id), "ip_id_in_line": in_line,
                "seq": p["seq"], "forged": ref is not None and p["ttl"] != ref,
                "packets_after_from_endpoint": sum(1 for q in own if q["frame"] > p["frame"]),
            })
    return sorted(res, key=lambda r: r["frame"])


def ip_id_view(flow, side, forged_frames):
    ids = [(p["frame"], p["ip_id"]) for p in flow.pkts
           if p["side"] == side and p["ip_id"] and p["frame"] not in forged_frames]
    if not ids:
        return None
    skips = []
    for (f0, a), (f1, b) in zip(ids, ids[1:]):
        d = (b - a) % 65536
        if d != 1:
            skips.append({"frame": f1, "after_frame": f0, "missing": d - 1})
    return {"first": hexid(ids[0][1]), "last": hexid(ids[-1][1]), "skips": skips}


def findings_for(flow, smtp, verdict, ends, icmps, retrans_frames):
    out = []

    def add(kind, side, frame, **ev):
        out.append({"kind": kind, "side": side, "frame": frame, "evidence": ev})

    for side in ("client", "server"):
        own = [p for p in flow.pkts if p["side"] == side]
        rsts = [e for e in ends if e["side"] == side and e["flag"] == "rst"]
        for e in ends:
            if e["side"] == side and e["forged"]:
                add("forged_rst" if e["flag"] == "rst" else "forged_fin", side, e["frame"],
                    ttl=e["ttl"], endpoint_ttl=e["endpoint_ttl"], ip_id=e["ip_id"],
                    endpoint_prev_ip_id=e["endpoint_prev_ip_id"], ip_id_in_line=e["ip_id_in_line"])
        if rsts:
            later = [p for p in own if p["frame"] > rsts[0]["frame"] and p["len"] > 0]
            if later:
                add("data_after_rst", side, later[0]["frame"], rst_frame=rsts[0]["frame"],
                    packets=[p["frame"] for p in later], ttl=later[0]["ttl"],
                    ip_id=hexid(later[0]["ip_id"]))
            if len({e["seq"] for e in rsts}) >= 2:
                add("rst_race", side, rsts[0]["frame"], rst_frames=[e["frame"] for e in rsts])
        zw = [p for p in own if p["win"] == 0 and not p["rst"] and not p["syn"]]
        if zw:
            add("zero_window", side, zw[0]["frame"], count=len(zw))
        # path MTU black hole: the largest segments, sent again and again, never acknowledged
        sizes = [p["len"] for p in own if p["len"]]
        if sizes and max(sizes) >= 1000:
            big = max(sizes)
            other = [p for p in flow.pkts if p["side"] != side and p["ack"] and not p["rst"]]
            tx = {}
            for p in own:
                if p["len"] == big:
                    tx.setdefault(p["seq"], []).append(p)
            lost = {s: ps for s, ps in tx.items()
                    if not any(0 < (q["ackno"] - s) % (1 << 32) < (1 << 31) for q in other)
                    and len(ps) >= 2}
            n_re = sum(len(ps) - 1 for ps in lost.values())
            quoted = [i for i in icmps if i["side"] == side]
            if lost and n_re >= 3 and not quoted:
                first = min(lost)
                add("mtu_black_hole", side, lost[first][0]["frame"], segment_bytes=big,
                    ip_len=lost[first][0]["ip_len"], segments=len(lost), retransmissions=n_re,
                    transmissions_of_first=[p["frame"] for p in lost[first]],
                    icmp_frag_needed_seen=False,
                    smaller_segments_sent=[p["frame"] for p in own if 0 < p["len"] < big
                                           and p["time"] >= lost[first][0]["time"]])
                frames = {p["frame"] for ps in lost.values() for p in ps[1:]}
                if not frames <= retrans_frames:
                    raise SystemExit(f"tshark does not flag {sorted(frames - retrans_frames)} as retransmissions")
    quoted = [i for i in icmps]
    if quoted:
        i = quoted[0]
        add("icmp_frag_needed", i["side"], i["frame"], count=len(quoted), mtu=i["mtu"],
            icmp_from=i["from"], quoted_ip_len=i["quoted"]["ip_len"],
            frames=[q["frame"] for q in quoted])
    one = [p for p in flow.pkts if p["side"] == "client" and p["len"] == 1]
    if len(one) >= 5:
        add("char_per_segment", "client", one[0]["frame"], count=len(one),
            text=b"".join(p["payload"] for p in one).decode("latin-1"))
    _base_s, s_spans = span_frames(flow, "server")
    _base_c, c_spans = span_frames(flow, "client")
    if smtp.replies:
        banner = smtp.replies[0]
        text = banner["lines"][-1][4:]
        if banner["code"] == 220 and text and set(text) == {"*"}:
            add("banner_masked", "server", frame_at(s_spans, banner["end"]), banner=banner["lines"][-1])
    for cmd in smtp.commands:
        line, rep = cmd["line"], cmd["reply"]
        verb = line.split(" ")[0].upper()
        if verb == "EHLO" and rep and rep["code"] == 250:
            for ln in rep["lines"][1:]:
                kw = ln[4:].split(" ")[0]
                if len(kw) >= 4 and set(kw[:-1]) == {"X"}:
                    add("esmtp_keyword_masked", "server", frame_at(s_spans, rep["end"]), line=ln)
        if len(line) >= 4 and set(line) == {"X"}:
            add("command_masked", "client", frame_at(c_spans, cmd["start"]), command=line,
                reply=rep["lines"][-1] if rep else None,
                reply_frame=frame_at(s_spans, rep["end"]) if rep else None)
    if verdict["cause"] == "idle_timeout" and smtp.phase == "data":
        data_cmd = [c for c in smtp.commands if c["line"].upper() == "DATA" and c["reply"]
                    and c["reply"]["code"] == 354][-1]
        f354 = frame_at(s_spans, data_cmd["reply"]["end"])
        t354 = next(p["time"] for p in flow.pkts if p["frame"] == f354)
        base, _ = span_frames(flow, "client")
        have = len(flow.data["client"])
        beyond = [p["frame"] for p in flow.pkts if p["side"] == "client" and p["len"]
                  and (p["seq"] - base) % (1 << 32) >= have]
        to = smtp.unprompted[0] if smtp.unprompted else None
        add("data_stall", "client", f354,
            client_bytes_in_order_after_354=have - (data_cmd["end"] + 1),
            client_segments_beyond_in_order_data=beyond,
            silence_s=round(to[2] - max(p["time"] for p in flow.pkts if p["side"] == "client"
                                        and p["len"] and p["time"] < to[2]), 3) if to else None,
            timeout_reply=to[1] if to else None,
            seconds_from_354_to_timeout_reply=round(to[2] - t354, 3) if to else None)
    if smtp.starttls or smtp.implicit_tls:
        first_close = {}
        for e in ends:
            first_close.setdefault(e["side"], e)
        for side in ("client", "server"):
            alerts = [r for r in smtp.tls_recs[side] if r["type"] == "alert"]
            cl = first_close.get(side)
            if alerts and cl and alerts[0]["time"] <= cl["time"]:
                spans = s_spans if side == "server" else c_spans
                add("tls_alert_before_close", side, frame_at(spans, alerts[0]["end"]),
                    alert=alert_name(alerts[0]), close_frame=cl["frame"], close=cl["flag"])
        hs = tls_summary(flow, smtp, s_spans, c_spans)
        if not hs["handshake_completed"] and hs["alerts"]:
            a = hs["alerts"][0]
            add("tls_handshake_failed", a["side"], a["frame"], alert=a["description"],
                level=a["level"])
    out.sort(key=lambda f: (f["frame"] or 0, f["kind"]))
    return out


LIMIT_CUT_S = 2.0


def limit_findings(f, full_c, ends, quit_at):
    """Cuts at a firewall limit (see the module doc), from the client's whole stream."""
    if not ends:
        return []
    cut = ends[0]
    if quit_at is not None and quit_at <= cut["time"]:
        return []
    if cut["side"] == "client" and not cut["forged"]:
        return []

    def soon(t):
        return t is not None and 0 <= cut["time"] - t <= LIMIT_CUT_S

    # complete final reply lines that reached this capture point before the cut (banner first)
    sd, replies, pos = f.data["server"], 0, 0
    while (i := sd.find(b"\n", pos)) >= 0:
        line = sd[pos:i + 1]
        if len(line) >= 4 and line[3:4] == b" " and f.time_at("server", i) <= cut["time"]:
            replies += 1
        pos = i + 1
    answered = replies - 1
    cmds, pos, data_start = [], 0, None
    while (i := full_c.find(b"\n", pos)) >= 0:
        line = full_c[pos:i + 1]
        verb = line.split(b" ")[0].strip().upper()
        cmds.append({"octets": len(line), "verb": verb.decode("latin-1"), "t": f.time_at("client", i)})
        pos = i + 1
        if verb == b"DATA" and b"\r\n354 " in b"\r\n" + sd:
            data_start = pos
            break
    frame = cut["frame"]
    out = []
    if data_start is None:
        open_octets = len(full_c) - pos
        others = max((c["octets"] for c in cmds), default=0)
        if open_octets > 512 and soon(f.time_at("client", len(full_c) - 1)):
            out.append(("line_length_limit", frame, {"line_octets": open_octets, "terminated": False,
                                                     "other_lines_max": others}))
        elif cmds and answered < len(cmds) and soon(cmds[-1]["t"]):
            last = cmds[-1]
            if last["octets"] > 512:
                out.append(("line_length_limit", frame, {
                    "line_octets": last["octets"], "terminated": True, "verb": last["verb"],
                    "other_lines_max": max((c["octets"] for c in cmds[:-1]), default=0)}))
            elif last["verb"] == "RCPT" and answered == len(cmds) - 1:
                since_mail = next((n for n in range(len(cmds) - 1, -1, -1) if cmds[n]["verb"] == "MAIL"), -1)
                n = sum(1 for c in cmds[since_mail + 1:] if c["verb"] == "RCPT")
                if n >= 2:
                    out.append(("recipient_limit", frame, {"rcpt_number": n, "answered_before": n - 1}))
    elif answered <= len(cmds):                  # the final reply to the data never came
        msg = full_c[data_start:]
        e = msg.find(b"\r\n\r\n")
        if e >= 0:
            header, t = msg[:e + 2], f.time_at("client", data_start + e + 3)
        else:
            header, t = msg, f.time_at("client", len(full_c) - 1)
        longest = max((len(x) for x in header.split(b"\r\n")), default=0)
        if (len(header) > 8192 or longest > 998) and soon(t):
            out.append(("header_length_limit", frame, {"header_octets": len(header),
                                                       "header_ended": e >= 0,
                                                       "longest_header_line": longest}))
    for kind, fr, ev in out:
        ev["cut_frame"] = cut["frame"]
        ev["cut"] = f"{cut['flag'].upper()} in the {cut['side']}'s name"
    return [{"kind": k, "side": "client", "frame": fr, "evidence": ev} for k, fr, ev in out]


def alert_name(rec):
    return rec.get("description", "encrypted")


def tls_summary(flow, smtp, s_spans, c_spans):
    spans = {"server": s_spans, "client": c_spans}
    ccs = {s: any(r["type"] == "change_cipher_spec" for r in smtp.tls_recs[s]) for s in spans}
    alerts = []
    for side in ("client", "server"):
        for r in smtp.tls_recs[side]:
            if r["type"] == "alert":
                alerts.append({"side": side, "frame": frame_at(spans[side], r["end"]),
                               "level": r.get("level", "encrypted"),
                               "description": r.get("description", "encrypted"), "time": r["time"]})
    alerts.sort(key=lambda a: a["time"])
    hs = []
    for side in ("client", "server"):
        for r in smtp.tls_recs[side]:
            if "handshake" in r:
                hs.append({"side": side, "type": r["handshake"],
                           "frame": frame_at(spans[side], r["end"]), "time": r["time"]})
    hs.sort(key=lambda h: h["time"])
    for x in alerts + hs:
        del x["time"]
    return {"implicit": smtp.implicit_tls, "handshake_completed": ccs["client"] and ccs["server"],
            "change_cipher_spec": ccs, "handshake_messages": hs, "alerts": alerts,
            "records": {s: len(smtp.tls_recs[s]) for s in spans}}


# --- one capture ------------------------------------------------------------------------------

def analyse(pcap, view, port, log, sessions, used_icids, problems):
    E.SMTP_PORT = port
    flows = [f for f in read_packets(pcap) if f.server[1] == port]
    icmps = read_icmp(pcap)
    retrans = tshark_retrans(pcap, port)
    quit_streams = set()
    if port == 25:
        for line in E.tshark(["-r", pcap, "-Y", "smtp.req.command", "-T", "fields", "-e", "tcp.stream",
                              "-e", "smtp.req.command"]).splitlines():
            stream, _, cmds = line.partition("\t")
            if "QUIT" in cmds.upper().split(","):
                quit_streams.add(int(stream))
    conns = []
    for f in flows:
        client, server = E.endpoint(*f.client), E.endpoint(*f.server)
        full_client = f.data["client"]
        unacked = cut_to_acked(f, "client") if view == "client" else None
        smtp = Smtp(f, implicit_tls=(port == 465))
        sess = sessions.get(client)
        log_rec = None
        if sess:
            log_rec = log.get(sess["icid"])
            if view == "client":
                pass
            elif log_rec is None:
                problems.append(f"{view}: {client}: ICID {sess['icid']} not in mail_logs")
            else:
                used_icids.add(sess["icid"])
                if log_rec["address"] != f.client[0]:
                    problems.append(f"{view}: {client}: log address {log_rec['address']}")
                if log_rec["mids"] != sess["mids"]:
                    problems.append(f"{client}: log MIDs {log_rec['mids']} != server {sess['mids']}")
                if log_rec["lost"] != (sess["ended"] in ("eof", "reset")):
                    problems.append(f"{client}: lost={log_rec['lost']} but server saw {sess['ended']}")
        else:
            problems.append(f"{view}: {client}: no server session for this connection")
        mine = [i for i in icmps if (i["quoted"]["src"], i["quoted"]["sport"]) in (f.client, f.server)
                and (i["quoted"]["dst"], i["quoted"]["dport"]) in (f.client, f.server)]
        for i in mine:
            i["side"] = "client" if (i["quoted"]["src"], i["quoted"]["sport"]) == f.client else "server"
        if smtp.implicit_tls:
            smtp.starttls = True          # expected.py's TLS rules apply from the first byte
            verdict, verdict_nolog = E.decide(f, smtp, log_rec)
            smtp.starttls = False
        else:
            verdict, verdict_nolog = E.decide(f, smtp, log_rec)
        ends = end_packets(f)
        first_end = ends[0] if ends else None
        if first_end and first_end["forged"]:
            # design.md: an RST/FIN the endpoint did not send -> a device in the path ended it
            cause = "forged_rst" if first_end["flag"] == "rst" else "forged_fin"
            mb = {"layer": "network", "initiator": "middlebox", "cause": cause, "phase": verdict["phase"]}
            verdict, verdict_nolog = dict(mb), dict(mb, phase=verdict_nolog["phase"])
        forged_frames = {e["frame"] for e in ends if e["forged"]}
        first_fin = next((e for e in ends if e["flag"] == "fin"), None)
        first_rst = next((e for e in ends if e["flag"] == "rst"), None)
        ttl = {s: sorted({p["ttl"] for p in f.pkts if p["side"] == s}) for s in ("client", "server")}
        # the last client byte the server could use: end of the in-order (and, on the client
        # side, acknowledged) client stream; retransmissions and segments beyond a hole do not count
        last_client = f.time_at("client", len(f.data["client"]) - 1) if f.data["client"] else None
        end_t = first_end["time"] if first_end else None
        if smtp.unprompted and smtp.unprompted[0][2] is not None:
            end_t = min(end_t, smtp.unprompted[0][2]) if end_t else smtp.unprompted[0][2]
        silence = round(end_t - last_client, 3) if end_t and last_client else None
        findings = findings_for(f, smtp, verdict, ends, mine, retrans)
        findings += limit_findings(f, full_client, ends, smtp.quit_at if smtp.quit else None)
        findings.sort(key=lambda x: (x["frame"] or 0, x["kind"]))
        tls = None
        if smtp.starttls or smtp.implicit_tls:
            tls = tls_summary(f, smtp, *[span_frames(f, s)[1] for s in ("server", "client")])
        conn = {
            "client": client,
            "server": server,
            "first_seen": E.rfc3339(f.first_seen),
            "last_seen": E.rfc3339(f.last_seen),
            "verdict": verdict,
            "verdict_without_log": verdict_nolog,
            "close": {
                "first_fin": first_fin["side"] if first_fin else None,
                "first_rst": first_rst["side"] if first_rst else None,
                "first_fin_at": E.rfc3339(first_fin["time_s"]) if first_fin else None,
                "first_rst_at": E.rfc3339(first_rst["time_s"]) if first_rst else None,
                "first_fin_frame": first_fin["frame"] if first_fin else None,
                "first_rst_frame": first_rst["frame"] if first_rst else None,
                "first_end_forged": first_end["forged"] if first_end else None,
            },
            "smtp": {"quit": smtp.quit, "starttls": smtp.starttls,
                     "transactions": smtp.transactions, "completed": smtp.completed},
            "log": {
                "icid": log_rec["icid"] if log_rec else None,
                "mids": log_rec["mids"] if log_rec else [],
                "log_outcome": log_rec["log_outcome"] if log_rec else None,
                "lost": log_rec["lost"] if log_rec else None,
            },
            "wire": {
                "frames": len(f.pkts),
                "first_frame": f.pkts[0]["frame"],
                "client_payload_bytes": len(f.data["client"]),
                "server_payload_bytes": len(f.data["server"]),
                "client_bytes_not_acknowledged": unacked,
                "client_bytes_missing": f.gap_flags["client"],
                "ttl": ttl,
                "ip_id": {s: ip_id_view(f, s, forged_frames) for s in ("client", "server")},
                "fin_rst": [{k: v for k, v in e.items() if k not in ("time", "time_s")} for e in ends],
                "retransmissions": {s: sorted(p["frame"] for p in f.pkts if p["side"] == s
                                              and p["frame"] in retrans) for s in ("client", "server")},
                "largest_segment": {s: max((p["len"] for p in f.pkts if p["side"] == s), default=0)
                                    for s in ("client", "server")},
                "icmp_frag_needed": [{k: v for k, v in i.items() if k != "time"} for i in mine],
                "last_client_command": smtp.last_command,
                "last_server_reply": smtp.last_reply if not (smtp.starttls or smtp.implicit_tls) else None,
                "unprompted_server_reply": smtp.unprompted[0][1] if smtp.unprompted else None,
                "silence_before_end_s": silence,
                "tls_alert_before_close": {
                    s: any(ct == E.TLS_ALERT for ct, *_ in smtp.tls_records[s]) for s in ("client", "server")
                } if (smtp.starttls or smtp.implicit_tls) else None,
            },
            "findings": findings,
        }
        if tls:
            conn["tls"] = tls
        if port == 25 and smtp.quit != (f.stream in quit_streams):
            problems.append(f"{view}: {client}: QUIT mine={smtp.quit} tshark={f.stream in quit_streams}")
        for s in ("client", "server"):
            normal = sorted({p["ttl"] for p in f.pkts if p["side"] == s and p["frame"] not in forged_frames})
            if len(normal) > 1:
                problems.append(f"{view}: {client}: {s} TTL not constant apart from forged packets {normal}")
        conns.append(conn)
    return conns, flows


def check_against(view, conns, intents, key, problems):
    for conn in conns:
        intent = intents.get(conn["client"])
        if intent is None:
            problems.append(f"{view}: {conn['client']}: not a connection the client script made")
            continue
        want = intent if key is None else intent.get(key)
        if want is None:
            problems.append(f"{view}: {conn['client']}: the scenario expects no {key}")
            continue
        for k in ("verdict", "verdict_without_log"):
            if conn[k] != want[k]:
                problems.append(f"{view}: {conn['client']}: {k} from capture {conn[k]} != intended {want[k]}")
        got_close = {k: conn["close"][k] for k in ("first_fin", "first_rst")}
        if got_close != want["close"]:
            problems.append(f"{view}: {conn['client']}: close {got_close} != intended {want['close']}")
        got = sorted([f["kind"], f["side"]] for f in conn["findings"])
        if got != sorted(want["findings"]):
            problems.append(f"{view}: {conn['client']}: findings {got} != intended {sorted(want['findings'])}")
        if key is None:
            conn["scenario"] = intent["scenario"]
            if "note" in intent:
                conn["note"] = intent["note"]
            if conn["smtp"] != intent["smtp"]:
                problems.append(f"{view}: {conn['client']}: smtp {conn['smtp']} != intended {intent['smtp']}")
            if conn["wire"]["client_bytes_missing"] != intent["gap"]:
                problems.append(f"{view}: {conn['client']}: gap {conn['wire']['client_bytes_missing']} "
                                f"!= intended {intent['gap']}")
        elif conn["wire"]["client_bytes_missing"]:
            problems.append(f"{view}: {conn['client']}: gap in the client capture")


def check_inspect(log_path, esa_conns, cli_conns, problems):
    """The inspector's own record of what it rewrote must be what the captures show."""
    records = [json.loads(x) for x in open(log_path, encoding="utf-8")]
    rewrites = [r for r in records if "action" not in r]
    cuts = [r for r in records if "action" in r]
    limit_kind = {"line": "line_length_limit", "rcpt": "recipient_limit",
                  "header_bytes": "header_length_limit"}
    for r in cuts:
        want = limit_kind[r["crossed"]["limit"]]
        seen = [c for c in esa_conns + cli_conns if c["client"] == r["client"]
                and any(f["kind"] == want for f in c["findings"])]
        print(f"fw_expected.py: inspector cut {r['client']} at {r['crossed']} "
              f"({r['action']}); {want} found in {len(seen)} capture(s)", file=sys.stderr)
        if not seen:
            problems.append(f"inspector cut {r['client']} at {r['crossed']}, no capture shows {want}")
    to_server = [r for r in rewrites if r["direction"] == "to_server"]
    to_client = [r for r in rewrites if r["direction"] == "to_client"]
    for conns, want, kinds in ((esa_conns, to_server, {"command_masked"}),
                               (cli_conns, to_client, {"banner_masked", "esmtp_keyword_masked"})):
        for conn in conns:
            frames = sorted({f["frame"] for f in conn["findings"] if f["kind"] in kinds})
            if len(frames) != len(want):
                problems.append(f"inspector rewrote {len(want)} packets toward {sorted(kinds)}, "
                                f"the capture shows {len(frames)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--describe")
    ap.add_argument("--case")
    ap.add_argument("--dir")
    ap.add_argument("--sessions")
    ap.add_argument("--intent")
    ap.add_argument("--tz-offset", type=int)
    ap.add_argument("--skew", type=int)
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--inspect-log")
    a = ap.parse_args()
    if a.describe:
        return describe(a.describe)

    log = E.read_log(f"{a.dir}/mail_logs")
    sessions = {}
    for line in open(a.sessions, encoding="utf-8"):
        s = json.loads(line)
        sessions[E.endpoint(s["client_ip"], s["client_port"])] = s
    intents = {}
    for line in open(a.intent, encoding="utf-8"):
        rec = json.loads(line)
        intents[rec["client"]] = rec

    problems = []
    used = set()
    conns, _ = analyse(f"{a.dir}/capture.pcap", "esa", a.port, log, sessions, used, problems)
    check_against("capture.pcap", conns, intents, None, problems)
    if len(conns) != len(intents):
        problems.append(f"{len(conns)} connections in capture.pcap, {len(intents)} made by the client")
    lt, protos = E.link_type(f"{a.dir}/capture.pcap")
    out = {
        "case": a.case,
        "capture": {"file": "capture.pcap", "link_type": lt, "first_frame_protocols": protos,
                    "taken_at": "esa"},
        "mail_log": {"file": "mail_logs"},
        "clock": {
            "log_header_utc_offset_seconds": a.tz_offset,
            "log_clock_skew_seconds": a.skew,
            "log_minus_utc_seconds": a.tz_offset + a.skew,
        },
        "connections": conns,
        "unmatched_icids": sorted(set(log) - used),
    }
    cpcap = f"{a.dir}/capture-client.pcap"
    want_client = any(i.get("client_capture") for i in intents.values())
    try:
        open(cpcap, "rb").close()
        have_client = True
    except FileNotFoundError:
        have_client = False
    if want_client != have_client:
        problems.append(f"capture-client.pcap present={have_client}, the scenario expects {want_client}")
    cconns = []
    if have_client:
        cconns, _ = analyse(cpcap, "client", a.port, log, sessions, set(), problems)
        check_against("capture-client.pcap", cconns, intents, "client_capture", problems)
        for c in cconns:
            for k in ("log",):
                c.pop(k, None)
        lt, protos = E.link_type(cpcap)
        out["client_capture"] = {"file": "capture-client.pcap", "link_type": lt,
                                 "first_frame_protocols": protos, "taken_at": "client",
                                 "connections": cconns}
    if a.inspect_log:
        check_inspect(a.inspect_log, conns, cconns, problems)
    with open(f"{a.dir}/expected.json", "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=2)
        fh.write("\n")
    if problems:
        for p in problems:
            print(f"fw_expected.py [{a.case}]: {p}", file=sys.stderr)
        return 1
    return 0


# --- README text ------------------------------------------------------------------------------

def v_str(v):
    return f"{v['layer']} / {v['initiator']} / {v['cause']} / {v['phase']}"


def finding_text(f):
    ev = f["evidence"]
    k = f["kind"]
    if k in ("forged_rst", "forged_fin"):
        return (f"{'RST' if k == 'forged_rst' else 'FIN'} in the {f['side']}'s name with TTL {ev['ttl']} "
                f"and IP ID {ev['ip_id']}; the {f['side']}'s own packets have TTL {ev['endpoint_ttl']} "
                f"and its IP ID before it was {ev['endpoint_prev_ip_id']}")
    if k == "data_after_rst":
        return (f"the {f['side']} still sends after the RST in its name (frame {ev['rst_frame']}): "
                f"frames {', '.join(map(str, ev['packets']))}, TTL {ev['ttl']}, IP ID {ev['ip_id']}")
    if k == "banner_masked":
        return f"banner `{ev['banner']}`"
    if k == "esmtp_keyword_masked":
        return f"EHLO reply line `{ev['line']}`"
    if k == "command_masked":
        return f"client command `{ev['command']}`, answered `{ev['reply']}` (frame {ev['reply_frame']})"
    if k == "char_per_segment":
        return f"{ev['count']} one-byte client segments: `{ev['text'].strip()}`"
    if k == "mtu_black_hole":
        return (f"{ev['segments']} full-size segments ({ev['segment_bytes']} bytes of payload, IP length "
                f"{ev['ip_len']}) never acknowledged, {ev['retransmissions']} retransmissions (first "
                f"segment sent in frames {', '.join(map(str, ev['transmissions_of_first']))}), no ICMP "
                f"'fragmentation needed' in the capture")
    if k == "icmp_frag_needed":
        return (f"{ev['count']} ICMP 'fragmentation needed' from {ev['icmp_from']} (next-hop MTU {ev['mtu']}) "
                f"quoting {ev['quoted_ip_len']}-byte packets (frames {', '.join(map(str, ev['frames']))})")
    if k == "data_stall":
        ooo = ev["client_segments_beyond_in_order_data"]
        return (f"after the 354 the server got no message data in order"
                + (f" (client segments past the gap: frame(s) {', '.join(map(str, ooo))})" if ooo else "")
                + f"; {ev['seconds_from_354_to_timeout_reply']} s later `{ev['timeout_reply']}`")
    if k == "zero_window":
        return f"{ev['count']} zero-window packets"
    if k == "tls_alert_before_close":
        return f"TLS alert ({ev['alert']}) before its {ev['close'].upper()} (frame {ev['close_frame']})"
    if k == "line_length_limit":
        what = (f"the client's {ev['line_octets']}-octet {ev.get('verb', '')} line, unanswered" if ev["terminated"]
                else f"{ev['line_octets']} octets of a client line without its line end")
        return (f"{ev['cut']} (frame {ev['cut_frame']}) right after {what}; its other command lines "
                f"were at most {ev['other_lines_max']} octets")
    if k == "recipient_limit":
        return (f"{ev['cut']} (frame {ev['cut_frame']}) right after the client's RCPT number "
                f"{ev['rcpt_number']}, unanswered, the {ev['answered_before']} before it answered")
    if k == "header_length_limit":
        return (f"{ev['cut']} (frame {ev['cut_frame']}) inside the message data after a header section of "
                f"{ev['header_octets']} octets ({'complete' if ev['header_ended'] else 'no empty line yet'}; "
                f"longest header line {ev['longest_header_line']}), no final reply")
    if k == "tls_handshake_failed":
        return f"handshake not completed; {ev['level']} alert {ev['alert']}"
    return json.dumps(ev)


def describe(path):
    d = json.load(open(path, encoding="utf-8"))
    blocks = [("capture.pcap (ESA side)", d["connections"])]
    if "client_capture" in d:
        blocks.append(("capture-client.pcap (client side)", d["client_capture"]["connections"]))
    for title, conns in blocks:
        for c in conns:
            print(f"- **{title}**: verdict {v_str(c['verdict'])}"
                  + (f" (without the log: {v_str(c['verdict_without_log'])})"
                     if c["verdict_without_log"] != c["verdict"] else "")
                  + f"; TTL client {c['wire']['ttl']['client']}, server {c['wire']['ttl']['server']}.")
            for e in c["wire"]["fin_rst"]:
                print(f"  - frame {e['frame']}: {e['flag'].upper()} in the {e['side']}'s name, TTL {e['ttl']} "
                      f"(the {e['side']}'s packets: {e['endpoint_ttl']}), IP ID {e['ip_id']} (previous "
                      f"from the {e['side']}: {e['endpoint_prev_ip_id']})"
                      + (" — forged" if e["forged"] else ""))
            for s in ("client", "server"):
                iv = c["wire"]["ip_id"][s]
                if iv and iv["skips"]:
                    sk = ", ".join(f"{x['missing']} before frame {x['frame']}" for x in iv["skips"])
                    print(f"  - {s} IP IDs skip (packets sent that never arrived here): {sk}")
            if not c["findings"]:
                print("  - findings: none")
            for f in c["findings"]:
                print(f"  - finding `{f['kind']}` ({f['side']}), frame {f['frame']}: {finding_text(f)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Compute a case's expected.json from its capture (through tshark) and its mail_logs.

    expected.py --case NAME --dir captures/NAME --sessions S.jsonl --intent I.jsonl \
                --tz-offset N --skew N

Wire facts (client address and port, first FIN / first RST side, QUIT, STARTTLS, transaction
counts, TLS alerts, TTLs, last command and reply) are read from capture.pcap with
`tshark -T fields` (per-packet TCP payload, reassembled here by sequence number), never taken
from what the client script meant. The verdict is then drawn from those facts with the rules of
docs/design.md. Finally everything is checked against the scenario's intent (--intent, written
by clients.py) and the server's ground truth (--sessions, written by esa_server.py: which ICID
served which client port); any disagreement is an error (exit 1) so make.sh fails loudly.

Python 3.11 standard library only (plus the tshark binary).
"""
import argparse
import json
import re
import subprocess
import sys
from datetime import datetime, timezone

SMTP_PORT = 25
TLS_ALERT = 21

FIELDS = [
    "frame.number", "frame.time_epoch", "ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst",
    "tcp.dstport", "tcp.stream", "tcp.flags.syn", "tcp.flags.ack", "tcp.flags.fin",
    "tcp.flags.reset", "tcp.seq_raw", "tcp.len", "tcp.payload", "ip.ttl", "ipv6.hlim",
]


def tshark(args):
    out = subprocess.run(["tshark", "-n"] + args, check=True, capture_output=True, text=True)
    return out.stdout


def flag(v):
    return v in ("1", "True", "true")


def rfc3339(epoch_str):
    secs, _, frac = epoch_str.partition(".")
    dt = datetime.fromtimestamp(int(secs), tz=timezone.utc)
    micros = (frac + "000000")[:6]
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{micros}Z"


def endpoint(ip, port):
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


# --- packets and flows ----------------------------------------------------------------------

class Flow:
    def __init__(self, stream):
        self.stream = stream
        self.pkts = []

    def finish(self):
        p0 = self.pkts[0]
        syn = next((p for p in self.pkts if p["syn"] and not p["ack"]), None)
        if syn:
            self.client = (syn["src"], syn["sport"])
        elif p0["dport"] == SMTP_PORT:
            self.client = (p0["src"], p0["sport"])
        else:
            self.client = (p0["dst"], p0["dport"])
        for p in self.pkts:
            p["side"] = "client" if (p["src"], p["sport"]) == self.client else "server"
            if p["side"] == "server":
                self.server = (p["src"], p["sport"])
            else:
                self.server = (p["dst"], p["dport"])
        self.first_seen = self.pkts[0]["time_s"]
        self.last_seen = self.pkts[-1]["time_s"]
        self.data, self.spans, self.gap_flags = {}, {}, {}
        for side in ("client", "server"):
            self.data[side], self.spans[side], self.gap_flags[side] = self.reassemble(side)

    def reassemble(self, side):
        """Return (bytes, [(start, end, time)], gap) of one direction, in sequence order, first
        copy of each byte wins; stop at a gap."""
        pk = [p for p in self.pkts if p["side"] == side]
        syn = next((p for p in pk if p["syn"]), None)
        base = (syn["seq"] + 1) if syn else min((p["seq"] for p in pk if p["len"]), default=0)
        segs = sorted((((p["seq"] - base) % (1 << 32), p) for p in pk if p["len"]),
                      key=lambda x: (x[0], x[1]["frame"]))
        buf = bytearray()
        spans = []
        gap = False
        for off, p in segs:
            end = off + p["len"]
            if off > len(buf):
                gap = True
                break
            if end > len(buf):
                buf += p["payload"][len(buf) - off:]
                spans.append((off, end, p["time"]))
        return bytes(buf), spans, gap

    def time_at(self, side, offset):
        """Capture time of the packet that delivered the byte at `offset` (first arrival)."""
        for start, end, t in self.spans[side]:
            if start <= offset < end:
                return t
        return None


def read_flows(pcap):
    out = tshark(["-r", pcap, "-Y", "tcp", "-T", "fields", "-E", "separator=\t",
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
            "syn": flag(v["tcp.flags.syn"]),
            "ack": flag(v["tcp.flags.ack"]),
            "fin": flag(v["tcp.flags.fin"]),
            "rst": flag(v["tcp.flags.reset"]),
            "seq": int(v["tcp.seq_raw"]),
            "len": int(v["tcp.len"] or 0),
            "payload": bytes.fromhex(v["tcp.payload"].replace(":", "")) if v["tcp.payload"] else b"",
            "ttl": int(v["ip.ttl"] or v["ipv6.hlim"]),
        }
        if len(p["payload"]) != p["len"]:
            raise SystemExit(f"frame {p['frame']}: payload length {len(p['payload'])} != tcp.len {p['len']}")
        flows.setdefault(int(v["tcp.stream"]), Flow(int(v["tcp.stream"]))).pkts.append(p)
    for f in flows.values():
        f.finish()
    return sorted(flows.values(), key=lambda f: (f.pkts[0]["time"], f.pkts[0]["frame"]))


# --- SMTP over the reassembled streams --------------------------------------------------------

class Smtp:
    """Walks client commands in order, pairing each with its reply(ies) from the server stream,
    tracking the session step (phase) exactly as far as the clear text goes."""

    def __init__(self, flow):
        self.f = flow
        self.c = flow.data["client"]
        self.s = flow.data["server"]
        self.cpos = 0
        self.spos = 0
        self.phase = "banner"
        self.quit = False
        self.quit_at = None
        self.starttls = False
        self.transactions = 0
        self.completed = 0
        self.open_tx = False
        self.last_tx_end = None        # 'completed' | 'rset' | 'rejected'
        self.last_command = None
        self.last_reply = None
        self.last_reply_answered = True
        self.unprompted = []           # replies the server sent without a pending command
        self.tls_records = {"client": [], "server": []}
        self.terminator_split = False  # "\r\n.\r\n" straddles two TCP segments
        self.run()

    def next_reply(self):
        lines = []
        pos = self.spos
        while True:
            i = self.s.find(b"\n", pos)
            if i < 0:
                return None
            line = self.s[pos:i].rstrip(b"\r").decode("latin-1")
            lines.append(line)
            pos = i + 1
            if len(line) < 4 or line[3] != "-":
                t = self.f.time_at("server", i)
                self.spos = pos
                code = int(line[:3]) if line[:3].isdigit() else 0
                self.last_reply = line
                return code, line, t

    def next_line(self):
        i = self.c.find(b"\n", self.cpos)
        if i < 0:
            return None
        line = self.c[self.cpos:i].rstrip(b"\r").decode("latin-1")
        t = self.f.time_at("client", i)
        self.cpos = i + 1
        return line, t

    def run(self):
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
                r = self.next_reply()
                self.open_tx = False
                if self.phase in ("banner", "greeting", "envelope"):
                    self.phase = "greeting"
            elif verb == "MAIL":
                self.transactions += 1
                self.phase = "envelope"
                r = self.next_reply()
                self.open_tx = bool(r and 200 <= r[0] < 300)
            elif verb == "RCPT":
                r = self.next_reply()
            elif verb == "DATA":
                r = self.next_reply()
                if r is None or r[0] == 354:
                    self.phase = "data"
                    end = self.c.find(b"\r\n.\r\n", self.cpos - 2)
                    if end < 0:
                        self.cpos = len(self.c)
                        break
                    self.cpos = end + 5
                    if any(end < start < end + 5 for start, _e, _t in self.f.spans["client"]):
                        self.terminator_split = True
                    self.phase = "after_data"
                    r = self.next_reply()
                    if r is None:
                        break
                    self.finish_tx(r[0])
            elif verb == "BDAT":
                n = int(arg.split()[0])
                last = "LAST" in arg.upper().split()[1:]
                self.phase = "data"
                if self.cpos + n > len(self.c):
                    self.cpos = len(self.c)
                    break
                self.cpos += n
                if last:
                    self.phase = "after_data"
                r = self.next_reply()
                if r is None:
                    break
                if last or not (200 <= r[0] < 300):
                    self.finish_tx(r[0])
            elif verb == "RSET":
                if self.open_tx:
                    self.last_tx_end = "rset"
                self.open_tx = False
                self.phase = "greeting" if self.phase != "banner" else "banner"
                r = self.next_reply()
            elif verb == "QUIT":
                self.quit = True
                self.quit_at = t
                self.phase = "quit"
                r = self.next_reply()
            elif verb == "STARTTLS":
                r = self.next_reply()
                if r and r[0] == 220:
                    self.starttls = True
                    self.phase = "tls"
                    self.read_tls()
                    return
            else:
                r = self.next_reply()
        # whatever the server still sent was not asked for (e.g. the idle-timeout 421)
        while True:
            r = self.next_reply()
            if r is None:
                break
            self.unprompted.append(r)

    def finish_tx(self, code):
        if 200 <= code < 300:
            self.completed += 1
            self.last_tx_end = "completed"
        else:
            self.last_tx_end = "rejected"
        self.open_tx = False
        self.phase = "greeting"

    def read_tls(self):
        for side, pos in (("client", self.cpos), ("server", self.spos)):
            data = self.f.data[side]
            while pos + 5 <= len(data):
                ctype, length = data[pos], int.from_bytes(data[pos + 3:pos + 5], "big")
                end = pos + 5 + length
                t = self.f.time_at(side, min(end, len(data)) - 1)
                self.tls_records[side].append((ctype, length, t, end <= len(data)))
                pos = end


# --- verdict rules (docs/design.md) ------------------------------------------------------------

def wire_facts(flow, smtp):
    ends = []
    for p in flow.pkts:
        if p["fin"]:
            ends.append(("fin", p["side"], p["time"], p["time_s"]))
        if p["rst"]:
            ends.append(("rst", p["side"], p["time"], p["time_s"]))
    first_fin = next((e for e in ends if e[0] == "fin"), None)
    first_rst = next((e for e in ends if e[0] == "rst"), None)
    first_end = ends[0] if ends else None
    return ends, first_fin, first_rst, first_end


def decide(flow, smtp, log_rec):
    """Return (verdict with log, verdict without log)."""
    ends, first_fin, first_rst, first_end = wire_facts(flow, smtp)

    def v(layer, initiator, cause, phase):
        return {"layer": layer, "initiator": initiator, "cause": cause, "phase": phase}

    if first_end is None:
        w = v("unknown", "none", "capture_ended", smtp.phase)
        return w, w
    kind, side = first_end[0], first_end[1]
    if smtp.starttls:
        alerts_before = {
            s: any(ct == TLS_ALERT and t is not None and t <= first_end[2]
                   for ct, _l, t, _c in smtp.tls_records[s])
            for s in ("client", "server")}
        # Inside TLS, QUIT and its 221 are invisible. A bare RST (no TLS alert from that side
        # first) is below SMTP; any other close leaves the SMTP end unknown without the log.
        if kind == "rst" and not alerts_before[side]:
            if side == "client":
                w = v("network", "client", "client_rst", "tls")
            else:
                w = v("server", "server", "server_rst", "tls")
            return w, w
        w = v("unknown", side, "tls_close" if alerts_before[side] else "tls_fin", "tls")
        if alerts_before["client"] and alerts_before["server"]:
            # With the log: delivered MIDs, no 'ICID lost' -> the client QUIT inside TLS.
            if log_rec and not log_rec["lost"] and log_rec["log_outcome"] in ("delivered", None):
                return v("none", "client", "quit", "quit"), w
        return w, w

    if smtp.quit and (smtp.quit_at is None or smtp.quit_at <= first_end[2]):
        if smtp.open_tx:
            w = v("application", "client", "quit_before_data", "quit")
        elif smtp.last_tx_end == "rset":
            w = v("application", "client", "rset_before_data", "quit")
        else:
            w = v("none", "client", "quit", "quit")
        return w, w
    if side == "server" and smtp.unprompted and smtp.unprompted[0][0] == 421:
        w = v("timeout", "server", "idle_timeout", smtp.phase)
        return w, w
    if side == "client":
        during = smtp.phase in ("data", "after_data")
        if kind == "rst":
            cause = "rst_during_data" if during else "client_rst"
        else:
            cause = "fin_during_data" if during else "client_fin_no_quit"
        w = v("network", "client", cause, smtp.phase)
        return w, w
    last = smtp.last_reply or ""
    if last[:1] in ("4", "5"):
        w = v("server", "server", "server_reject_close", smtp.phase)
    else:
        w = v("server", "server", "server_rst" if kind == "rst" else "server_close", smtp.phase)
    return w, w


# --- mail log ---------------------------------------------------------------------------------

LOG_RE = re.compile(r"^(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}) Info: (.*?)\s*$")


def read_log(path):
    icids = {}
    mid_icid = {}
    mids = {}
    for line in open(path, encoding="utf-8"):
        m = LOG_RE.match(line)
        if not m:
            raise SystemExit(f"{path}: unexpected line {line!r}")
        msg = m.group(2)
        if mm := re.match(r"New SMTP ICID (\d+) interface .* address (\S+) reverse dns", msg):
            icids[int(mm[1])] = {"icid": int(mm[1]), "address": mm[2], "mids": [], "lost": False,
                                 "closed": False, "tls": False, "rejected": False}
        elif mm := re.match(r"ICID (\d+) REJECT", msg):
            icids[int(mm[1])]["rejected"] = True
        elif mm := re.match(r"ICID (\d+) TLS success", msg):
            icids[int(mm[1])]["tls"] = True
        elif mm := re.match(r"ICID (\d+) lost$", msg):
            icids[int(mm[1])]["lost"] = True
        elif mm := re.match(r"ICID (\d+) close$", msg):
            icids[int(mm[1])]["closed"] = True
        elif mm := re.match(r"Start MID (\d+) ICID (\d+)$", msg):
            mid, icid = int(mm[1]), int(mm[2])
            icids[icid]["mids"].append(mid)
            mid_icid[mid] = icid
            mids[mid] = None
        elif mm := re.match(r"MID (\d+) ready \d+ bytes", msg):
            mids[int(mm[1])] = "delivered"
        elif mm := re.match(r"Message aborted MID (\d+) Receiving aborted by sender$", msg):
            mids[int(mm[1])] = "aborted_by_sender"
        elif mm := re.match(r"Message aborted MID (\d+) Receiving aborted$", msg):
            mids[int(mm[1])] = "aborted"
    for rec in icids.values():
        if rec["mids"]:
            rec["log_outcome"] = mids[rec["mids"][-1]]
        else:
            # As icidtrace's log stage words it: refused, lost without a message, or closed
            # without one.
            rec["log_outcome"] = ("rejected" if rec["rejected"]
                                  else "lost" if rec["lost"] else "no_message")
    return icids


# --- main -------------------------------------------------------------------------------------

def link_type(pcap):
    out = subprocess.run(["capinfos", "-E", "-T", "-r", pcap], capture_output=True, text=True,
                         check=True).stdout.strip().split("\t")
    protos = tshark(["-r", pcap, "-c", "1", "-T", "fields", "-e", "frame.protocols"]).strip()
    return out[-1], protos


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--sessions", required=True)
    ap.add_argument("--intent", required=True)
    ap.add_argument("--tz-offset", type=int, required=True)
    ap.add_argument("--skew", type=int, required=True)
    a = ap.parse_args()

    pcap = f"{a.dir}/capture.pcap"
    flows = read_flows(pcap)
    log = read_log(f"{a.dir}/mail_logs")
    sessions = {}
    for line in open(a.sessions, encoding="utf-8"):
        s = json.loads(line)
        sessions[endpoint(s["client_ip"], s["client_port"])] = s
    intents = {}
    for line in open(a.intent, encoding="utf-8"):
        rec = json.loads(line)
        intents[rec["client"]] = rec

    # tshark's own SMTP dissector, as an independent check on QUIT seen in clear text
    quit_streams = set()
    for line in tshark(["-r", pcap, "-Y", "smtp.req.command", "-T", "fields", "-e", "tcp.stream",
                        "-e", "smtp.req.command"]).splitlines():
        stream, _, cmds = line.partition("\t")
        if "QUIT" in cmds.upper().split(","):
            quit_streams.add(int(stream))

    problems = []
    conns = []
    used_icids = set()
    for f in flows:
        client = endpoint(*f.client)
        server = endpoint(*f.server)
        if f.server[1] != SMTP_PORT:
            continue
        smtp = Smtp(f)
        sess = sessions.get(client)
        log_rec = None
        if sess:
            log_rec = log.get(sess["icid"])
            if log_rec is None:
                problems.append(f"{client}: ICID {sess['icid']} not in mail_logs")
            else:
                used_icids.add(sess["icid"])
                if log_rec["address"] != f.client[0]:
                    problems.append(f"{client}: log address {log_rec['address']}")
                if log_rec["mids"] != sess["mids"]:
                    problems.append(f"{client}: log MIDs {log_rec['mids']} != server {sess['mids']}")
                if log_rec["lost"] != (sess["ended"] in ("eof", "reset")):
                    problems.append(f"{client}: lost={log_rec['lost']} but server saw {sess['ended']}")
        else:
            problems.append(f"{client}: no server session for this connection")
        verdict, verdict_nolog = decide(f, smtp, log_rec)
        _ends, first_fin, first_rst, first_end = wire_facts(f, smtp)
        ttl = {s: sorted({p["ttl"] for p in f.pkts if p["side"] == s}) for s in ("client", "server")}
        last_client = max((p["time"] for p in f.pkts if p["side"] == "client" and p["len"]), default=None)
        end_t = first_end[2] if first_end else None
        if smtp.unprompted and smtp.unprompted[0][2] is not None:
            end_t = min(end_t, smtp.unprompted[0][2]) if end_t else smtp.unprompted[0][2]
        silence = round(end_t - last_client, 3) if end_t and last_client else None
        conn = {
            "client": client,
            "server": server,
            "first_seen": rfc3339(f.first_seen),
            "last_seen": rfc3339(f.last_seen),
            "verdict": verdict,
            "verdict_without_log": verdict_nolog,
            "close": {
                "first_fin": first_fin[1] if first_fin else None,
                "first_rst": first_rst[1] if first_rst else None,
                "first_fin_at": rfc3339(first_fin[3]) if first_fin else None,
                "first_rst_at": rfc3339(first_rst[3]) if first_rst else None,
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
                "ttl": ttl,
                "last_client_command": smtp.last_command,
                "last_server_reply": smtp.last_reply if not smtp.starttls else None,
                "unprompted_server_reply": smtp.unprompted[0][1] if smtp.unprompted else None,
                "silence_before_end_s": silence,
                "data_terminator_split_across_segments": smtp.terminator_split,
                "tls_alert_before_close": {
                    s: any(ct == TLS_ALERT for ct, *_ in smtp.tls_records[s]) for s in ("client", "server")
                } if smtp.starttls else None,
            },
        }
        # --- cross-checks against the intent and tshark's SMTP dissector
        intent = intents.get(client)
        if intent is None:
            problems.append(f"{client}: not a connection the client script made")
        else:
            if "note" in intent:
                conn["note"] = intent["note"]
            conn["scenario"] = intent["scenario"]
            for key in ("verdict", "verdict_without_log", "smtp"):
                if conn[key] != intent[key]:
                    problems.append(f"{client}: {key} from capture {conn[key]} != intended {intent[key]}")
            want_close = {k: conn["close"][k] for k in ("first_fin", "first_rst")}
            if want_close != intent["close"]:
                problems.append(f"{client}: close from capture {want_close} != intended {intent['close']}")
        if smtp.quit != (f.stream in quit_streams):
            if smtp.terminator_split and smtp.quit:
                # tshark 4.0's SMTP dissector does not see the end of DATA when "\r\n.\r\n" is
                # split across segments and then reads QUIT as body; the server did answer 250/221.
                pass
            else:
                problems.append(f"{client}: QUIT mine={smtp.quit} tshark={f.stream in quit_streams}")
        if f.gap_flags["client"] or f.gap_flags["server"]:
            problems.append(f"{client}: gap in the capture")
        for s in ("client", "server"):
            if len(ttl[s]) > 1:
                problems.append(f"{client}: {s} TTL not constant {ttl[s]}")
        conns.append(conn)

    if len(conns) != len(intents):
        problems.append(f"{len(conns)} connections in the capture, {len(intents)} made by the client")
    unmatched = sorted(set(log) - used_icids)
    lt, protos = link_type(pcap)
    out = {
        "case": a.case,
        "capture": {"file": "capture.pcap", "link_type": lt, "first_frame_protocols": protos},
        "mail_log": {"file": "mail_logs"},
        "clock": {
            "log_header_utc_offset_seconds": a.tz_offset,
            "log_clock_skew_seconds": a.skew,
            "log_minus_utc_seconds": a.tz_offset + a.skew,
        },
        "connections": conns,
        "unmatched_icids": unmatched,
    }
    with open(f"{a.dir}/expected.json", "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=2)
        fh.write("\n")
    if problems:
        for p in problems:
            print(f"expected.py [{a.case}]: {p}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

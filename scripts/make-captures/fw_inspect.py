#!/usr/bin/env python3
"""An in-path SMTP "inspection" that rewrites packets the way a Cisco ASA/PIX ESMTP inspection
(`inspect esmtp`, the old `fixup smtp` / mailguard) does, for making test captures.

    ip netns exec ict-router iptables -A FORWARD -p tcp --dport 25 -j NFQUEUE --queue-num 0
    ip netns exec ict-router iptables -A FORWARD -p tcp --sport 25 -j NFQUEUE --queue-num 0
    ip netns exec ict-router python3 fw_inspect.py --queue 0 --ready-file F --log L

It is not a proxy: every forwarded port-25 packet goes through an NFQUEUE (netlink, spoken
here with the standard library only) and comes back accepted, either as it was or with some
payload bytes replaced by bytes of the same number, so sequence numbers, lengths, TTLs and
IP IDs stay what the endpoints sent (the router still decrements the TTL); only the TCP
checksum is recomputed. Like the ASA it:

  * masks the server's banner: `220 esa.example.com ESMTP` -> `220 *********************`
    (every character after `220 ` up to the CRLF becomes `*`);
  * masks extensions it does not support in the EHLO reply: `250-STARTTLS` -> `250-XXXXXXXA`,
    `250-CHUNKING` -> `250-XXXXXXXB` (X's and a letter, same length), so the client never
    sees STARTTLS and cannot encrypt;
  * replaces a client command it does not allow (not in EHLO HELO MAIL RCPT DATA RSET NOOP
    QUIT AUTH, or containing a byte outside printable ASCII) with X's of the same length, so
    the server answers `500 ... command not recognized`;
  * leaves the message body (after DATA and the server's 354, up to CRLF.CRLF) alone.

With --no-mask it rewrites nothing. Limits, as an ASA's ESMTP policy map enforces them
(`match cmd line length gt N`, `match cmd RCPT count gt N`, `match header length gt N`), each
off unless given:

  --max-line N          a client command line over N octets (CRLF included), judged when its
                        line end arrives (the packet carrying the rest of the line is the one
                        that crosses it, so the bytes before it have already passed);
  --max-rcpt N          the (N+1)th RCPT command of a transaction;
  --max-header-bytes N  a message header section (DATA, up to the empty line) over N octets,
                        judged per packet: the packet that takes it past N.

On a violation the packet is dropped and, with --action reset (the ASA's `reset`), an RST goes
to each end in the other's name (sent by this router: its TTL, IP ID chosen by the kernel),
with the exact sequence number each end expects so the kernel accepts it; with --action drop
(`drop-connection`) nothing is sent. Either way every later packet of that connection, in both
directions, is dropped, as the firewall has torn its connection entry down.

Each rewrite and each cut is logged as one JSON line to --log (ground truth for expected.json:
which packet, what was masked or which limit it crossed). IPv4 only. Python 3.11 standard
library only.
"""
import argparse
import json
import os
import signal
import socket
import struct
import sys

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_PACKET = 2
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_PAYLOAD = 10
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
NLMSG_DONE = 3
NF_DROP = 0
NF_ACCEPT = 1
TCP_RST, TCP_ACK = 0x04, 0x10

ALLOWED = {b"EHLO", b"HELO", b"MAIL", b"RCPT", b"DATA", b"RSET", b"NOOP", b"QUIT", b"AUTH"}
# extension keyword -> mask, as the ASA writes them (X's and a distinguishing letter)
MASKED_KEYWORDS = {b"STARTTLS": b"XXXXXXXA", b"CHUNKING": b"XXXXXXXB"}


def nla(atype, data):
    n = 4 + len(data)
    return struct.pack("=HH", n, atype) + data + b"\0" * (-n % 4)


def nfmsg(mtype, flags, seq, res_id, attrs):
    body = struct.pack("!BBH", socket.AF_UNSPEC, 0, res_id) + attrs
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | mtype, flags, seq, 0) + body


def parse_attrs(data):
    out = {}
    pos = 0
    while pos + 4 <= len(data):
        n, atype = struct.unpack_from("=HH", data, pos)
        if n < 4:
            break
        out[atype & 0x3FFF] = data[pos + 4:pos + n]
        pos += (n + 3) & ~3
    return out


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def tcp_packet(src, dst, sport, dport, seq, ack, flags):
    """An IPv4/TCP segment without payload (IP ID 0: the kernel picks one, as for REJECT)."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 0, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, socket.IPPROTO_TCP, 20)
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, socket.IPPROTO_TCP, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + tcp


class Inspector:
    def __init__(self, log_path, mask=True, max_line=None, max_rcpt=None, max_header=None,
                 action="reset"):
        self.flows = {}
        self.log = open(log_path, "a", encoding="utf-8") if log_path else None
        self.count = 0
        self.mask = mask
        self.max_line, self.max_rcpt, self.max_header = max_line, max_rcpt, max_header
        self.action = action
        self.raw = None
        if max_line or max_rcpt or max_header:
            self.raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)

    def note(self, **rec):
        if self.log:
            self.log.write(json.dumps(rec) + "\n")
            self.log.flush()

    def packet(self, pkt):
        """Return the (possibly rewritten) IPv4 packet, or None to drop it."""
        if len(pkt) < 20 or pkt[0] >> 4 != 4 or pkt[9] != socket.IPPROTO_TCP:
            return pkt
        ihl = (pkt[0] & 0x0F) * 4
        total = struct.unpack_from("!H", pkt, 2)[0]
        tcp = ihl
        sport, dport, seq, ackno = struct.unpack_from("!HHII", pkt, tcp)
        doff = (pkt[tcp + 12] >> 4) * 4
        start = tcp + doff
        payload = bytes(pkt[start:total])
        src, dst = socket.inet_ntoa(pkt[12:16]), socket.inet_ntoa(pkt[16:20])
        if sport == 25:
            key, to_client = (dst, dport, src), True
        elif dport == 25:
            key, to_client = (src, sport, dst), False
        else:
            return pkt
        st = self.flows.get(key)
        if st and st.get("dead"):
            return None                      # the connection was torn down at a limit
        if not payload:
            return pkt
        st = self.flows.setdefault(key, {"banner": False, "data_pending": False, "in_data": False,
                                         "tail": b"", "line": 0, "rcpts": 0, "header": None,
                                         "c_next": None, "dead": False})
        if not to_client:
            crossed = self.limits(st, seq, payload)
            if crossed:
                self.cut(st, key, seq, ackno, len(payload), crossed)
                return None
        if not self.mask:
            if to_client:
                self.watch_server(st, payload)
            return pkt
        new = self.from_server(st, payload) if to_client else self.from_client(st, payload)
        if new == payload:
            return pkt
        assert len(new) == len(payload)
        out = bytearray(pkt)
        out[start:total] = new
        struct.pack_into("!H", out, tcp + 16, 0)
        pseudo = out[12:20] + struct.pack("!BBH", 0, socket.IPPROTO_TCP, total - tcp)
        struct.pack_into("!H", out, tcp + 16, checksum(bytes(pseudo) + bytes(out[tcp:total])))
        self.note(client=f"{key[0]}:{key[1]}", direction="to_client" if to_client else "to_server",
                  seq=seq, ip_id=struct.unpack_from("!H", pkt, 4)[0],
                  before=payload.decode("latin-1"), after=new.decode("latin-1"))
        return bytes(out)

    def limits(self, st, seq, payload):
        """The limit this client segment takes the session past, or None. Counts each client
        byte once (a retransmission is judged again by its first copy's verdict: passed)."""
        if not (self.max_line or self.max_rcpt or self.max_header):
            return None
        if st["c_next"] is not None and (seq - st["c_next"]) % (1 << 32) >= (1 << 31):
            return None                      # old bytes: already counted and passed
        st["c_next"] = (seq + len(payload)) % (1 << 32)
        if st["in_data"]:
            if not self.mask:
                # Nobody else follows the message here: find its end mark.
                seen = st["tail"] + payload
                if seen.find(b"\r\n.\r\n") >= 0:
                    st["in_data"], st["tail"] = False, b""
                else:
                    st["tail"] = seen[-4:]
            h = st["header"]
            if h is None or h["done"] or not self.max_header:
                return None
            # Header octets: line ends included, the empty line that ends the section not.
            seen = h["tail"] + payload
            if h["octets"] == 0 and not h["tail"] and payload.startswith(b"\r\n"):
                h["done"] = True
                return None
            e = seen.find(b"\r\n\r\n")
            if e >= 0:
                h["done"] = True
                h["octets"] += max(e + 2 - len(h["tail"]), 0)
            else:
                h["octets"] += len(payload)
                h["tail"] = seen[-3:]
            if h["octets"] > self.max_header:
                return {"limit": "header_bytes", "max": self.max_header, "octets": h["octets"]}
            return None
        pos = 0
        while pos < len(payload):
            i = payload.find(b"\n", pos)
            if i < 0:
                st["line"] += len(payload) - pos
                st.setdefault("line_head", payload[pos:pos + 8])
                break
            octets = st["line"] + i + 1 - pos
            head = st.pop("line_head", None) or payload[pos:pos + 8]
            st["line"] = 0
            verb = head.split(b" ", 1)[0].split(b"\r", 1)[0].upper()
            if self.max_line and octets > self.max_line:
                return {"limit": "line", "max": self.max_line, "octets": octets,
                        "verb": verb.decode("latin-1")}
            if verb == b"MAIL":
                st["rcpts"] = 0
            elif verb == b"RCPT":
                st["rcpts"] += 1
                if self.max_rcpt and st["rcpts"] > self.max_rcpt:
                    return {"limit": "rcpt", "max": self.max_rcpt, "rcpt": st["rcpts"]}
            elif verb == b"DATA":
                st["data_pending"] = True
            pos = i + 1
        return None

    def cut(self, st, key, seq, ackno, length, crossed):
        """Drop this packet and the rest of the connection; with reset, RST both ends."""
        st["dead"] = True
        client, cport, server = key
        rsts = []
        if self.action == "reset":
            # To the server in the client's name: exactly where the dropped bytes would start.
            to_server = tcp_packet(client, server, cport, 25, seq, ackno, TCP_RST | TCP_ACK)
            # To the client in the server's name: what the client acknowledged is what it expects.
            to_client = tcp_packet(server, client, 25, cport, ackno, (seq + length) % (1 << 32),
                                   TCP_RST | TCP_ACK)
            for dst, p in ((server, to_server), (client, to_client)):
                self.raw.sendto(p, (dst, 0))
            rsts = [{"to": "server", "seq": seq}, {"to": "client", "seq": ackno}]
        self.note(client=f"{client}:{cport}", direction="to_server", action=self.action,
                  seq=seq, length=length, crossed=crossed, rsts=rsts)

    def watch_server(self, st, payload):
        """Without masking: only follow the 354 that starts message data."""
        for line in payload.split(b"\r\n"):
            if line[:4] in (b"354 ", b"354-") and st["data_pending"]:
                st["in_data"], st["data_pending"], st["tail"] = True, False, b"\r\n"
                st["header"] = {"octets": 0, "done": False, "tail": b""}

    def from_server(self, st, payload):
        lines = payload.split(b"\r\n")
        out = []
        for line in lines:
            code, sep, text = line[:3], line[3:4], line[4:]
            if not st["banner"] and code == b"220" and sep in (b" ", b"-"):
                line = code + sep + b"*" * len(text)
                if sep == b" ":
                    st["banner"] = True
            elif code == b"250" and sep in (b" ", b"-") and text.upper() in MASKED_KEYWORDS:
                line = code + sep + MASKED_KEYWORDS[text.upper()]
            elif code == b"354" and st["data_pending"]:
                st["in_data"], st["data_pending"], st["tail"] = True, False, b"\r\n"
                st["header"] = {"octets": 0, "done": False, "tail": b""}
            out.append(line)
        return b"\r\n".join(out)

    def from_client(self, st, payload):
        out = bytearray()
        pos = 0
        if st["in_data"]:
            seen = st["tail"] + payload
            end = seen.find(b"\r\n.\r\n")
            if end < 0:
                st["tail"] = seen[-4:]
                return payload
            pos = end + 5 - len(st["tail"])
            st["in_data"], st["tail"] = False, b""
            out += payload[:pos]
        while pos < len(payload):
            i = payload.find(b"\r\n", pos)
            end = len(payload) if i < 0 else i
            line = payload[pos:end]
            verb = line.split(b" ", 1)[0].upper()
            if verb not in ALLOWED or any(b < 0x20 or b > 0x7E for b in line):
                line = b"X" * len(line)
            elif verb == b"DATA":
                st["data_pending"] = True
            out += line + payload[end:end + 2]
            pos = end + 2
        return bytes(out)


class Queue:
    def __init__(self, num):
        self.num = num
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((0, 0))
        self.seq = 0
        self.request(NFQNL_MSG_CONFIG, nla(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_BIND, 0, 0)))
        self.request(NFQNL_MSG_CONFIG, nla(NFQA_CFG_PARAMS, struct.pack("!IB", 0xFFFF, NFQNL_COPY_PACKET)))

    def request(self, mtype, attrs):
        self.seq += 1
        self.sock.send(nfmsg(mtype, NLM_F_REQUEST | NLM_F_ACK, self.seq, self.num, attrs))
        data = self.sock.recv(65536)
        n, t = struct.unpack_from("=IH", data, 0)
        if t == NLMSG_ERROR:
            err = struct.unpack_from("=i", data, 16)[0]
            if err != 0:
                raise OSError(-err, f"nfqueue config: {os.strerror(-err)}")

    def run(self, handle):
        while True:
            data = self.sock.recv(1 << 17)
            pos = 0
            while pos + 16 <= len(data):
                n, t, _f, _s, _p = struct.unpack_from("=IHHII", data, pos)
                if n < 16:
                    break
                msg = data[pos:pos + n]
                pos += (n + 3) & ~3
                if t == NLMSG_ERROR:
                    err = struct.unpack_from("=i", msg, 16)[0]
                    if err:
                        raise OSError(-err, f"nfqueue: {os.strerror(-err)}")
                    continue
                if t != (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                    continue
                attrs = parse_attrs(msg[20:])
                pkt_id = struct.unpack_from("!I", attrs[NFQA_PACKET_HDR], 0)[0]
                pkt = attrs.get(NFQA_PAYLOAD, b"")
                new = handle(pkt)
                verdict = NF_DROP if new is None else NF_ACCEPT
                vattrs = nla(NFQA_VERDICT_HDR, struct.pack("!II", verdict, pkt_id))
                if new is not None and new != pkt:
                    vattrs += nla(NFQA_PAYLOAD, new)
                self.seq += 1
                self.sock.send(nfmsg(NFQNL_MSG_VERDICT, NLM_F_REQUEST, self.seq, self.num, vattrs))


def main():
    ap = argparse.ArgumentParser(description="ASA-like ESMTP inspection on an NFQUEUE")
    ap.add_argument("--queue", type=int, default=0)
    ap.add_argument("--log", help="JSON lines: one per rewritten packet")
    ap.add_argument("--ready-file")
    ap.add_argument("--no-mask", action="store_true", help="rewrite nothing (limits only)")
    ap.add_argument("--max-line", type=int, help="client command line octets, CRLF included")
    ap.add_argument("--max-rcpt", type=int, help="RCPT commands per transaction")
    ap.add_argument("--max-header-bytes", type=int, help="header section octets")
    ap.add_argument("--action", choices=("reset", "drop"), default="reset")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    q = Queue(a.queue)
    insp = Inspector(a.log, mask=not a.no_mask, max_line=a.max_line, max_rcpt=a.max_rcpt,
                     max_header=a.max_header_bytes, action=a.action)
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    q.run(insp.packet)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Client scenarios for the firewall / middlebox and TLS captures (make-firewall.sh).

    fw_clients.py SCENARIO --server ADDR [--port 25] --intent FILE [--pace S]

Builds on clients.py (same Client class and message maker). What is different here is what
happens *between* the client and the ESA: make-firewall.sh configures the router namespace
(iptables REJECT with tcp-reset, a small MTU with or without ICMP, an SMTP-rewriting
NFQUEUE inspector) and each scenario knows what that will do to it.

For every connection it appends one JSON line to --intent, like clients.py, plus:
  findings         [[kind, side], ...] a careful analyst must see in capture.pcap (ESA side)
  client_capture   what capture-client.pcap (taken in the client namespace) must show, or null
  gap              true when the ESA-side capture is expected to miss client bytes
fw_expected.py computes the real facts from the captures and fails on any difference.

Python 3.11 standard library only.
"""
import argparse
import json
import socket
import ssl
import sys
import time

import clients as C
from clients import Client, make_message, verdict

MSG_SIZE_MTU = 5000   # 3 full-size segments (1448 B) + one small tail: the tail passes a 1000-byte MTU


def record(args, c, scenario, v, close, findings, v_nolog=None, client_capture=None, note=None,
           gap=False):
    rec = {"client": c.local, "scenario": scenario, "verdict": v,
           "verdict_without_log": v_nolog or v, "close": close, "smtp": c.facts(),
           "findings": [list(f) for f in findings], "client_capture": client_capture, "gap": gap}
    if note:
        rec["note"] = note
    with open(args.intent, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")


def cc(v, close, findings, v_nolog=None):
    """What capture-client.pcap must show for the connection."""
    return {"verdict": v, "verdict_without_log": v_nolog or v, "close": close,
            "findings": [list(f) for f in findings]}


def expect_reset(c, what, timeout=15.0):
    """Wait for a reply that must not come: the connection must be reset instead."""
    try:
        code, lines = c.reply(timeout=timeout)
    except ConnectionResetError:
        c.sock.close()
        return
    except socket.timeout:
        raise RuntimeError(f"{what}: no reply and no RST within {timeout} s")
    raise RuntimeError(f"{what}: got a reply {lines}, expected the connection to be reset")


# --- scenarios ------------------------------------------------------------------------------

def sc_injected_rst(args):
    """The router drops the ESA's 354 and answers it with an RST to the ESA in the client's
    name (REJECT --reject-with tcp-reset). The client never gets its 354 or the ACK of its
    DATA, retransmits DATA, and the ESA (its socket gone) answers that with its own RST."""
    c = C.connect(args)
    c.ehlo()
    c.mail()
    c.rcpt()
    time.sleep(c.pace)
    c.send(b"DATA\r\n")
    expect_reset(c, "DATA")
    record(args, c, "fw-injected-rst", verdict("network", "middlebox", "forged_rst", "data"),
           {"first_fin": None, "first_rst": "client"},
           [("forged_rst", "client"), ("data_after_rst", "client")],
           client_capture=cc(verdict("server", "server", "server_rst", "envelope"),
                             {"first_fin": None, "first_rst": "server"}, []),
           note="The RST that ended the session on the ESA's side carries the client's address but "
                "the router's TTL (64: sent one hop away) and IP ID 0, while every packet the client "
                "really sent arrives with TTL 63 and IP IDs counting up by one; after 'its' RST the "
                "client is still talking (its DATA retransmission), which the ESA answers with an RST "
                "of its own. The client capture shows no RST from the client at all: DATA, DATA "
                "again, and the ESA's RST (a real one, TTL 63 there like all the ESA's packets).")


def sc_rst_both_ends(args):
    """MAIL accepted; RCPT and DATA sent back to back (PIPELINING). The router resets the
    client when it sees DATA (RST in the ESA's name) and resets the ESA when it sees the ESA's
    250 for the RCPT (RST in the client's name); both original segments are dropped."""
    c = C.connect(args)
    c.ehlo()
    c.mail()
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    time.sleep(c.pace)
    c.send(f"RCPT TO:<{C.RCPT}>\r\n".encode())
    c.send(b"DATA\r\n")
    expect_reset(c, "RCPT+DATA")
    record(args, c, "fw-rst-both-ends", verdict("network", "middlebox", "forged_rst", "envelope"),
           {"first_fin": None, "first_rst": "client"},
           [("forged_rst", "client")],
           client_capture=cc(verdict("network", "middlebox", "forged_rst", "envelope"),
                             {"first_fin": None, "first_rst": "server"},
                             [("forged_rst", "server")]),
           note="Each end gets an RST the other never sent. ESA side: the RST in the client's name "
                "has TTL 64 and IP ID 0 (client packets: TTL 63, IDs in sequence), and the DATA the "
                "client sent never arrives. Client side: the RST in the ESA's name has TTL 64 and IP "
                "ID 0 (the ESA's packets arrive there with TTL 63), and the ESA's 250 for the RCPT "
                "never arrives.")


def sc_rst_after_quit(args):
    """A delivered message, QUIT, 221, the ESA's FIN; then the client closes with RST
    (SO_LINGER 0) instead of FIN. Nothing was aborted: a negative control."""
    c = C.connect(args)
    c.ehlo()
    c.mail()
    c.rcpt()
    c.data(make_message(3000, "Reset after quit", "rstq"))
    time.sleep(c.pace)
    c.send(b"QUIT\r\n")
    c.quit_sent = True
    code, lines = c.reply()
    if code != 221:
        raise RuntimeError(f"QUIT: {lines}")
    c.wait_eof()      # the ESA's FIN first, then our RST: deterministic order
    c.rst()
    record(args, c, "fw-rst-after-quit", verdict("none", "client", "quit", "quit"),
           {"first_fin": "server", "first_rst": "client"}, [],
           note="The client's RST after QUIT/221 is its own: TTL 63 like its other packets, IP ID "
                "the next in its sequence. Not a middlebox, not an abort.")


def sc_mtu(args, blackhole):
    c = C.connect(args)
    c.ehlo()
    c.mail()
    c.rcpt()
    c.cmd("DATA", "354")
    time.sleep(c.pace)
    c.send(make_message(MSG_SIZE_MTU, "Path MTU", "mtu") + b".\r\n")
    if blackhole:
        code, lines = c.reply(timeout=60)
        if code != 421:
            raise RuntimeError(f"expected the ESA's 421 after its idle timeout, got {lines}")
        c.wait_eof()
        c.sock.close()   # FIN queued behind the unacknowledged body: it never gets through
        record(args, c, "fw-mtu-blackhole", verdict("timeout", "server", "idle_timeout", "data"),
               {"first_fin": "server", "first_rst": None},
               [("data_stall", "client")],
               client_capture=cc(verdict("timeout", "server", "idle_timeout", "data"),
                                 {"first_fin": "server", "first_rst": None},
                                 [("mtu_black_hole", "client"), ("data_stall", "client")]),
               gap=True,
               note="The router's link to the ESA has MTU 1000 and the router's ICMP 'fragmentation "
                    "needed' never leaves it. ESA side: DATA, 354, then only the small last segment "
                    "of the body arrives (out of order, beyond a hole of three full-size segments, "
                    "SACKed), nothing fills the hole, and after the idle timeout (4 s here) the ESA "
                    "sends 421 and closes. Client side: the same full-size (1500-byte IP) segments "
                    "sent again and again, never acknowledged, and no ICMP at all. On the client side "
                    "the ESA's 421 is not an answer to the body: its ACK number stops at DATA.")
    else:
        code, lines = c.reply(timeout=60)
        if code != 250:
            raise RuntimeError(f"message not accepted: {lines}")
        c.completed += 1
        c.quit()
        record(args, c, "fw-mtu-icmp", verdict("none", "client", "quit", "quit"),
               {"first_fin": "server", "first_rst": None}, [],
               client_capture=cc(verdict("none", "client", "quit", "quit"),
                                 {"first_fin": "server", "first_rst": None},
                                 [("icmp_frag_needed", "client")]),
               note="Control for fw-mtu-blackhole: the router's ICMP 'fragmentation needed' (next-hop "
                    "MTU 1000) reaches the client, which lowers its path MTU and resends the body "
                    "in 948-byte segments; the message is delivered.")


def sc_mtu_blackhole(args):
    sc_mtu(args, True)


def sc_mtu_icmp(args):
    sc_mtu(args, False)


def sc_smtp_inspect(args):
    """Through fw_inspect.py (an ASA-like ESMTP inspection in the router): masked banner,
    STARTTLS and CHUNKING X'd out of the EHLO reply, VRFY replaced by X's."""
    c = C.connect(args)
    banner = c.banner[1][-1]
    if not (banner.startswith("220 ") and set(banner[4:]) == {"*"}):
        raise RuntimeError(f"banner not masked: {banner!r}")
    time.sleep(c.pace)
    c.send(f"EHLO {C.HELO_NAME}\r\n".encode())
    code, lines = c.reply()
    caps = [ln[4:] for ln in lines[1:]]
    if code != 250 or "STARTTLS" in caps or "XXXXXXXA" not in caps:
        raise RuntimeError(f"EHLO reply not masked as expected: {lines}")
    code = c.cmd(f"VRFY {C.RCPT.split('@')[0]}")
    if code != 500:
        raise RuntimeError(f"VRFY: expected 500 (the ESA sees X's), got {code}")
    c.mail()
    c.rcpt()
    c.data(make_message(2000, "Inspected", "insp"))
    c.quit()
    record(args, c, "fw-smtp-inspect", verdict("none", "client", "quit", "quit"),
           {"first_fin": "server", "first_rst": None},
           [("command_masked", "client")],
           client_capture=cc(verdict("none", "client", "quit", "quit"),
                             {"first_fin": "server", "first_rst": None},
                             [("banner_masked", "server"), ("esmtp_keyword_masked", "server"),
                              ("esmtp_keyword_masked", "server")]),
           note="The packets keep their lengths and sequence numbers; only bytes change. ESA side: "
                "the banner and EHLO reply leave the ESA intact (STARTTLS offered), the client's "
                "'VRFY bob' arrives as 'XXXXXXXX' and gets '500 #5.5.1 command not recognized'. "
                "Client side: banner '220 ****...' and '250-XXXXXXXA' (STARTTLS) / '250-XXXXXXXB' "
                "(CHUNKING) in the EHLO reply, so the client cannot start TLS.")


def sc_char_per_segment(args):
    """EHLO typed one character per TCP segment (TCP_NODELAY, one send per byte)."""
    c = C.connect(args)
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    time.sleep(c.pace)
    for ch in f"EHLO {C.HELO_NAME}\r\n".encode():
        c.send(bytes([ch]))
        time.sleep(0.01)
    code, lines = c.reply()
    if code != 250:
        raise RuntimeError(f"EHLO: {lines}")
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
    c.mail()
    c.rcpt()
    c.data(make_message(2000, "Typed", "cps"))
    c.quit()
    record(args, c, "fw-char-per-segment", verdict("none", "client", "quit", "quit"),
           {"first_fin": "server", "first_rst": None},
           [("char_per_segment", "client")],
           note="'EHLO mta1.example.net\\r\\n' arrives as 23 one-byte segments, 10 ms apart (as "
                "typed on a terminal, or re-segmented by a device in the path); the rest is normal.")


def sc_tls_handshake_failed(args):
    """STARTTLS 220, then a ClientHello offering only AES128-SHA, which the ESA (configured
    with ECDHE-RSA-AES256-GCM-SHA384 only) refuses with a handshake_failure alert."""
    c = C.connect(args)
    c.ehlo()
    c.cmd("STARTTLS", "220")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("AES128-SHA")
    c.tls = True
    tls = ctx.wrap_socket(c.sock, server_hostname="esa.example.com", do_handshake_on_connect=False)
    try:
        tls.do_handshake()
    except ssl.SSLError as e:
        if "HANDSHAKE_FAILURE" not in str(e).upper():
            raise RuntimeError(f"unexpected TLS error {e}")
    else:
        raise RuntimeError("TLS handshake succeeded; expected a handshake_failure alert")
    # Like an MTA that reads until the server hangs up: the ESA's FIN first, then ours.
    c.sock = socket.socket(fileno=tls.detach())
    c.wait_eof(timeout=5)
    c.sock.close()
    record(args, c, "tls-handshake-failed", verdict("unknown", "server", "tls_close", "tls"),
           {"first_fin": "server", "first_rst": None},
           [("tls_alert_before_close", "server"), ("tls_handshake_failed", "server")],
           note="EHLO, STARTTLS, 220, ClientHello (only TLS_RSA_WITH_AES_128_CBC_SHA), and the ESA "
                "answers with a plaintext fatal alert handshake_failure (40) and closes (FIN); the "
                "client closes after it. No ServerHello, no encrypted data: nothing after STARTTLS "
                "was ever readable or sent. The log says 'TLS failed' and 'ICID lost' (no MID). "
                "design.md's rules give unknown / server / tls_close / tls (a TLS alert before "
                "the server's FIN).")


class ImplicitTlsClient(Client):
    """SMTPS: the TLS handshake first, the 220 banner inside TLS."""

    def __init__(self, server, port, pace):
        fam = socket.AF_INET6 if ":" in server else socket.AF_INET
        raw = socket.socket(fam, socket.SOCK_STREAM)
        raw.settimeout(30)
        raw.connect((server, port))
        self.local = C.addr_str(raw.getsockname())
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.sock = ctx.wrap_socket(raw, server_hostname="esa.example.com")
        self.pace = pace
        self.buf = b""
        self.tls = True
        self.quit_sent = False
        self.transactions = 0
        self.completed = 0
        self.banner = self.reply()

    def facts(self):
        return dict(super().facts(), starttls=False)   # encrypted from the start, no STARTTLS


def sc_tls_implicit(args):
    c = ImplicitTlsClient(args.server, args.port, args.pace)
    c.ehlo()
    c.mail()
    c.rcpt()
    c.data(make_message(3000, "Implicit TLS", "smtps"))
    c.quit()
    record(args, c, "tls-implicit-465", verdict("none", "client", "quit", "quit"),
           {"first_fin": "server", "first_rst": None},
           [("tls_alert_before_close", "client"), ("tls_alert_before_close", "server")],
           v_nolog=verdict("unknown", "server", "tls_close", "tls"),
           note="SMTPS on port 465: the ClientHello is the first payload byte, the banner and the "
                "whole SMTP session are encrypted. close_notify both ways, then the ESA's FIN. With "
                "the log (delivered MID, no 'ICID lost') the verdict is a clean QUIT; from the wire "
                "alone it is unknown / server / tls_close / tls, as for starttls-delivered.")


# --- limits of an SMTP-inspecting firewall (fw_inspect.py --max-line/--max-rcpt/--max-header-bytes)

LIMIT_LINE = 512          # fw_inspect.py --max-line: the ASA default `match cmd line length gt 512`
LONG_LINE = 2049          # octets of the offending RCPT line, CRLF included (two segments)
LIMIT_RCPT = 3            # fw_inspect.py --max-rcpt
LIMIT_HEADER = 10000      # fw_inspect.py --max-header-bytes
HEADER_LINES = 140        # 100-octet Received-style header lines: a 14,000-octet header section


def long_header_message():
    lines = [f"Received: from relay{i:03d}.example.net (relay{i:03d}.example.net [198.51.100.{i % 250 + 1:d}]) by mx.example.com".ljust(98, "x")
             for i in range(HEADER_LINES)]
    head = "\r\n".join(lines) + "\r\nSubject: Long header\r\n\r\n"
    return head.encode() + b"A short body.\r\n"


def sc_limit_line(args):
    """MAIL accepted, then an RCPT line of 2,049 octets. The firewall judges a line at its end:
    the first segment (1,448 octets, no line end yet) passes, the one with the CRLF is dropped
    and both ends get an RST in the other's name."""
    c = C.connect(args)
    c.ehlo()
    c.mail()
    local = "r" * (LONG_LINE - len("RCPT TO:<@example.com>\r\n"))
    line = f"RCPT TO:<{local}@example.com>\r\n".encode()
    assert len(line) == LONG_LINE
    time.sleep(c.pace)
    c.send(line)
    expect_reset(c, "long RCPT")
    record(args, c, "fw-limit-line", verdict("network", "middlebox", "forged_rst", "envelope"),
           {"first_fin": None, "first_rst": "client"},
           [("forged_rst", "client"), ("line_length_limit", "client")],
           client_capture=cc(verdict("network", "middlebox", "forged_rst", "envelope"),
                             {"first_fin": None, "first_rst": "server"},
                             [("forged_rst", "server"), ("line_length_limit", "client")]),
           note="ESA side: the first 1,448 octets of the RCPT line arrive, then at once an RST in the "
                "client's name with the router's TTL (64; the client's packets: 63); the rest of the "
                "line never comes. Client side: the whole 2,049-octet line sent, then an RST in the "
                "ESA's name (TTL 64; the ESA's packets arrive with 63); no reply.")


def sc_limit_rcpt(args):
    """Three RCPTs accepted one by one; the fourth is dropped and both ends reset."""
    c = C.connect(args)
    c.ehlo()
    c.mail()
    for i in range(LIMIT_RCPT):
        c.rcpt(f"user{i + 1}@example.com")
    time.sleep(c.pace)
    c.send(f"RCPT TO:<user{LIMIT_RCPT + 1}@example.com>\r\n".encode())
    expect_reset(c, "RCPT over the count")
    record(args, c, "fw-limit-rcpt", verdict("network", "middlebox", "forged_rst", "envelope"),
           {"first_fin": None, "first_rst": "client"},
           [("forged_rst", "client")],
           client_capture=cc(verdict("network", "middlebox", "forged_rst", "envelope"),
                             {"first_fin": None, "first_rst": "server"},
                             [("forged_rst", "server"), ("recipient_limit", "client")]),
           note="ESA side: three RCPTs answered 250, then an RST in the client's name (TTL 64; the "
                "client's packets: 63); the fourth RCPT never arrives, so the ESA's capture cannot "
                "tell a recipient limit from any other forged reset. Client side: the fourth RCPT "
                "sent, no reply, an RST in the ESA's name (TTL 64; the ESA's packets: 63).")


def sc_limit_header(args):
    """DATA accepted, then a message with a 14,000-octet header section; the packet that takes
    the section past 10,000 octets is dropped and both ends reset."""
    c = C.connect(args)
    c.ehlo()
    c.mail()
    c.rcpt()
    c.cmd("DATA", "354")
    time.sleep(c.pace)
    c.send(long_header_message() + b".\r\n")
    expect_reset(c, "message with a long header")
    record(args, c, "fw-limit-header", verdict("network", "middlebox", "forged_rst", "data"),
           {"first_fin": None, "first_rst": "client"},
           [("forged_rst", "client"), ("header_length_limit", "client")],
           client_capture=cc(verdict("network", "middlebox", "forged_rst", "data"),
                             {"first_fin": None, "first_rst": "server"},
                             [("forged_rst", "server"), ("header_length_limit", "client")]),
           note="ESA side: DATA, 354, the first six segments of the header section (8,688 octets, no "
                "empty line yet), then an RST in the client's name (TTL 64; the client's packets: "
                "63). Client side: the whole message sent (a 14,000-octet header section, body, end "
                "of data), then an RST in the ESA's name (TTL 64); no final reply.")


SCENARIOS = {
    "fw-injected-rst": sc_injected_rst,
    "fw-rst-both-ends": sc_rst_both_ends,
    "fw-rst-after-quit": sc_rst_after_quit,
    "fw-mtu-blackhole": sc_mtu_blackhole,
    "fw-mtu-icmp": sc_mtu_icmp,
    "fw-smtp-inspect": sc_smtp_inspect,
    "fw-char-per-segment": sc_char_per_segment,
    "tls-handshake-failed": sc_tls_handshake_failed,
    "tls-implicit-465": sc_tls_implicit,
    "fw-limit-line": sc_limit_line,
    "fw-limit-rcpt": sc_limit_rcpt,
    "fw-limit-header": sc_limit_header,
}


def main():
    p = argparse.ArgumentParser(description="firewall / TLS client scenarios for icidtrace captures")
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, default=25)
    p.add_argument("--intent", required=True, help="append one JSON line per connection")
    p.add_argument("--pace", type=float, default=0.05, help="think time before each command (s)")
    args = p.parse_args()
    SCENARIOS[args.scenario](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Real SMTP clients for the icidtrace capture scenarios.

    clients.py SCENARIO --server ADDR [--port 25] [--intent FILE] [--marker FILE] [--pace S]

Each scenario opens real TCP connections to the listener (esa_server.py) and ends them the way
the scenario says: QUIT, RSET+QUIT, FIN without QUIT (shutdown(SHUT_WR)), RST (SO_LINGER 0 then
close), silence until the server's idle timeout, or nothing at all (still open).

For every connection it appends one JSON line to --intent: the client address as "ip:port" and
what the scenario *meant* to produce (verdict, close side, SMTP facts visible in clear text).
make.sh's post-processor computes the real facts from the capture and checks them against this.

Python 3.11 standard library only.
"""
import argparse
import json
import socket
import ssl
import struct
import sys
import threading
import time
from email.utils import formatdate

HELO_NAME = "mta1.example.net"
SENDER = "alice@example.net"
RCPT = "bob@example.com"
RCPT2 = "carol@example.com"

_intent_lock = threading.Lock()


def addr_str(sockaddr):
    ip, port = sockaddr[0], sockaddr[1]
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def make_message(size, subject, tag):
    """An RFC 5322 message of about `size` bytes (CRLF lines, no line starting with a dot)."""
    head = (
        f"Date: {formatdate(localtime=False)}\r\n"
        f"From: Alice <{SENDER}>\r\n"
        f"To: Bob <{RCPT}>\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <{tag}@mta1.example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
    ).encode()
    lines = []
    n = len(head)
    i = 0
    while n < size:
        line = f"{i:05d} The quick brown fox jumps over the lazy dog; 0123456789 ABCDEFGHIJ\r\n".encode()
        lines.append(line)
        n += len(line)
        i += 1
    return head + b"".join(lines)


class Client:
    """A small, explicit SMTP client over a plain socket (smtplib hides the close behaviour we
    need to control). It counts the SMTP facts that are visible in clear text on the wire."""

    def __init__(self, server, port=25, pace=0.0, timeout=30.0):
        fam = socket.AF_INET6 if ":" in server else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect((server, port))
        self.local = addr_str(self.sock.getsockname())
        self.pace = pace
        self.buf = b""
        self.tls = False
        self.quit_sent = False
        self.transactions = 0
        self.completed = 0
        self.banner = self.reply()

    # -- wire primitives --------------------------------------------------------------------
    def send(self, data):
        self.sock.sendall(data)

    def reply(self, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        lines = []
        while True:
            while b"\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed while waiting for a reply")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            line = line.rstrip(b"\r").decode("latin-1")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines

    def cmd(self, line, expect=None):
        if self.pace:
            time.sleep(self.pace)
        self.send(line.encode() + b"\r\n")
        code, lines = self.reply()
        if expect and not str(code).startswith(expect):
            raise RuntimeError(f"{line!r}: unexpected reply {lines}")
        return code

    # -- SMTP steps -------------------------------------------------------------------------
    def ehlo(self):
        self.cmd(f"EHLO {HELO_NAME}", "250")

    def mail(self, sender=SENDER):
        self.cmd(f"MAIL FROM:<{sender}>", "250")
        if not self.tls:
            self.transactions += 1

    def rcpt(self, rcpt=RCPT):
        self.cmd(f"RCPT TO:<{rcpt}>", "250")

    def data(self, msg):
        self.cmd("DATA", "354")
        if self.pace:
            time.sleep(self.pace)
        self.send(msg + b".\r\n")
        code, lines = self.reply()
        if code != 250:
            raise RuntimeError(f"message not accepted: {lines}")
        if not self.tls:
            self.completed += 1

    def starttls(self):
        self.cmd("STARTTLS", "220")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.sock = ctx.wrap_socket(self.sock, server_hostname="esa.example.com")
        self.buf = b""
        self.tls = True

    def quit(self):
        """QUIT, read 221, end TLS with close_notify if any, wait for the server's FIN, close."""
        if self.pace:
            time.sleep(self.pace)
        self.send(b"QUIT\r\n")
        if not self.tls:
            self.quit_sent = True
        code, lines = self.reply()
        if code != 221:
            raise RuntimeError(f"QUIT: {lines}")
        if self.tls:
            self.sock.settimeout(5)
            self.sock = self.sock.unwrap()   # our close_notify out, the server's in
        self.wait_eof()
        self.sock.close()

    def wait_eof(self, timeout=10.0):
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except (ConnectionError, socket.timeout, ssl.SSLError):
            pass

    def rst(self):
        """Abortive close: SO_LINGER {on, 0} then close() makes the kernel send RST."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def fin_no_quit(self):
        """Half-close without QUIT (FIN), then wait for the server's FIN and close."""
        self.sock.shutdown(socket.SHUT_WR)
        self.wait_eof()
        self.sock.close()

    def facts(self):
        return {"quit": self.quit_sent, "starttls": self.tls, "transactions": self.transactions,
                "completed": self.completed}


def verdict(layer, initiator, cause, phase):
    return {"layer": layer, "initiator": initiator, "cause": cause, "phase": phase}


def record(args, c, scenario, v, close, v_nolog=None, note=None):
    rec = {"client": c.local, "scenario": scenario, "verdict": v,
           "verdict_without_log": v_nolog or v, "close": close, "smtp": c.facts()}
    if note:
        rec["note"] = note
    if args.intent:
        with _intent_lock:
            with open(args.intent, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")


def connect(args, pace=None):
    return Client(args.server, args.port, args.pace if pace is None else pace)


# --- scenarios ------------------------------------------------------------------------------

def sc_delivered_quit(args, tag="dq", size=3000, pace=None, subject="Quarterly report"):
    c = connect(args, pace)
    c.ehlo()
    c.mail()
    c.rcpt()
    c.data(make_message(size, subject, tag))
    c.quit()
    record(args, c, "delivered-quit", verdict("none", "client", "quit", "quit"),
           {"first_fin": "server", "first_rst": None})


def sc_quit_after_rcpt(args, pace=None):
    c = connect(args, pace)
    c.ehlo()
    c.mail()
    c.rcpt()
    c.quit()
    record(args, c, "quit-after-rcpt", verdict("application", "client", "quit_before_data", "quit"),
           {"first_fin": "server", "first_rst": None})


def sc_rst_before_data(args, pace=None):
    c = connect(args, pace)
    c.ehlo()
    c.mail()
    c.rcpt()
    time.sleep(c.pace)
    c.rst()
    record(args, c, "rst-before-data", verdict("network", "client", "client_rst", "envelope"),
           {"first_fin": None, "first_rst": "client"})


def sc_fin_no_quit(args):
    c = connect(args)
    c.ehlo()
    c.mail()
    c.rcpt()
    time.sleep(c.pace)
    c.fin_no_quit()
    record(args, c, "fin-no-quit", verdict("network", "client", "client_fin_no_quit", "envelope"),
           {"first_fin": "client", "first_rst": None})


def sc_rst_during_data(args):
    c = connect(args)
    c.ehlo()
    c.mail()
    c.rcpt()
    c.cmd("DATA", "354")
    msg = make_message(200 * 1024, "Large attachment", "rdd")
    half = len(msg) // 2
    for off in range(0, half, 8192):
        c.send(msg[off:min(off + 8192, half)])
        time.sleep(0.002)
    time.sleep(0.3)   # let the first half reach the server, then abort mid-body
    c.rst()
    record(args, c, "rst-during-data", verdict("network", "client", "rst_during_data", "data"),
           {"first_fin": None, "first_rst": "client"})


def sc_idle_timeout(args):
    c = connect(args)
    c.ehlo()
    c.mail()
    c.rcpt()
    code, lines = c.reply(timeout=60)   # silence: wait for the server's 421
    if code != 421:
        raise RuntimeError(f"expected 421, got {lines}")
    c.wait_eof()
    c.sock.close()
    record(args, c, "idle-timeout", verdict("timeout", "server", "idle_timeout", "envelope"),
           {"first_fin": "server", "first_rst": None})


def sc_starttls_delivered(args):
    c = connect(args)
    c.ehlo()
    c.starttls()
    c.ehlo()
    c.mail()
    c.rcpt()
    c.data(make_message(4000, "Encrypted hello", "tlsd"))
    c.quit()
    record(args, c, "starttls-delivered", verdict("none", "client", "quit", "quit"),
           {"first_fin": "server", "first_rst": None},
           v_nolog=verdict("unknown", "server", "tls_close", "tls"),
           note="After STARTTLS the QUIT is encrypted: the wire shows TLS close_notify alerts from "
                "both sides before the FINs (graceful, the ESA's first), the log shows the MID "
                "delivered and no 'ICID lost'. Without the log the SMTP end is unknown (phase tls).")


def sc_starttls_rst(args):
    c = connect(args)
    c.ehlo()
    c.starttls()
    c.ehlo()
    c.mail()
    c.rcpt()
    c.cmd("DATA", "354")
    msg = make_message(200 * 1024, "Encrypted large", "tlsr")
    half = len(msg) // 2
    for off in range(0, half, 8192):
        c.send(msg[off:min(off + 8192, half)])
        time.sleep(0.002)
    time.sleep(0.3)
    c.rst()
    record(args, c, "starttls-rst", verdict("network", "client", "client_rst", "tls"),
           {"first_fin": None, "first_rst": "client"},
           note="RST without a TLS alert in the middle of encrypted message data. The wire cannot "
                "read the SMTP step (phase tls, cause client_rst, not rst_during_data); the log "
                "shows the MID open without 'ready', then 'ICID lost' and 'Receiving aborted'.")


def sc_pipelining(args):
    c = connect(args)
    c.ehlo()
    time.sleep(c.pace)
    c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{RCPT}>\r\nRCPT TO:<{RCPT2}>\r\nDATA\r\n".encode())
    codes = [c.reply()[0] for _ in range(4)]
    if codes != [250, 250, 250, 354]:
        raise RuntimeError(f"pipelined replies {codes}")
    c.transactions += 1
    c.send(make_message(3000, "Pipelined", "pipe") + b".\r\n")
    code, lines = c.reply()
    if code != 250:
        raise RuntimeError(lines)
    c.completed += 1
    c.quit()
    record(args, c, "pipelining", verdict("none", "client", "quit", "quit"),
           {"first_fin": "server", "first_rst": None})


def sc_bdat(args):
    c = connect(args)
    c.ehlo()
    c.mail()
    c.rcpt()
    msg = make_message(5000, "Chunked", "bdat")
    chunks = [msg[:2048], msg[2048:4096], msg[4096:]]
    for i, ch in enumerate(chunks):
        last = i == len(chunks) - 1
        time.sleep(c.pace)
        c.send(f"BDAT {len(ch)}{' LAST' if last else ''}\r\n".encode() + ch)
        code, lines = c.reply()
        if code != 250:
            raise RuntimeError(lines)
    c.completed += 1
    c.quit()
    record(args, c, "bdat", verdict("none", "client", "quit", "quit"),
           {"first_fin": "server", "first_rst": None})


def sc_rset_quit(args):
    c = connect(args)
    c.ehlo()
    c.mail()
    c.rcpt()
    c.cmd("RSET", "250")
    c.quit()
    record(args, c, "rset-quit", verdict("application", "client", "rset_before_data", "quit"),
           {"first_fin": "server", "first_rst": None})


def sc_still_open(args):
    c = connect(args)
    c.ehlo()
    c.mail()
    c.rcpt()
    record(args, c, "still-open", verdict("unknown", "none", "capture_ended", "envelope"),
           {"first_fin": None, "first_rst": None},
           note="The capture stops while the envelope is open. The server's idle timeout fires "
                "after the capture ended, so the log has 'Receiving aborted' that the wire cannot show.")
    if args.marker:
        with open(args.marker, "w") as f:
            f.write("envelope done\n")
    # Stay silent; make.sh stops the capture now. Afterwards the server times out.
    code, lines = c.reply(timeout=120)
    c.wait_eof()
    c.sock.close()


BURST_PLAN = {4: "quit-after-rcpt", 12: "quit-after-rcpt", 20: "quit-after-rcpt",
              8: "rst-before-data", 16: "rst-before-data", 23: "rst-before-data"}


def sc_burst(args, n=25, spacing=0.035):
    """n connections from one client IP, all started within the same wall-clock second (so
    they share one log second too: the log clock is off by whole seconds), overlapping in time,
    mostly delivered."""
    errors = []

    def one(i):
        try:
            kind = BURST_PLAN.get(i, "delivered-quit")
            if kind == "quit-after-rcpt":
                sc_quit_after_rcpt(args, pace=0.02)
            elif kind == "rst-before-data":
                sc_rst_before_data(args, pace=0.02)
            else:
                sc_delivered_quit(args, tag=f"burst{i:02d}", size=1500 + 97 * i, pace=0.02,
                                  subject=f"Burst message {i}")
        except Exception as e:  # noqa: BLE001 - report and fail the run
            errors.append(f"connection {i}: {e!r}")

    now = time.time()
    t0 = int(now) + 1 + 0.02          # just after the next second boundary
    threads = []
    for i in range(n):
        delay = t0 + i * spacing - time.time()
        if delay > 0:
            time.sleep(delay)
        t = threading.Thread(target=one, args=(i,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("; ".join(errors))


SCENARIOS = {
    "delivered-quit": sc_delivered_quit,
    "quit-after-rcpt": sc_quit_after_rcpt,
    "rst-before-data": sc_rst_before_data,
    "fin-no-quit": sc_fin_no_quit,
    "rst-during-data": sc_rst_during_data,
    "idle-timeout": sc_idle_timeout,
    "starttls-delivered": sc_starttls_delivered,
    "starttls-rst": sc_starttls_rst,
    "pipelining": sc_pipelining,
    "bdat": sc_bdat,
    "rset-quit": sc_rset_quit,
    "still-open": sc_still_open,
    "burst": sc_burst,
}


def main():
    p = argparse.ArgumentParser(description="SMTP client scenarios for icidtrace test captures")
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, default=25)
    p.add_argument("--intent", help="append one JSON line per connection (what was meant)")
    p.add_argument("--marker", help="still-open: file written once the envelope is sent")
    p.add_argument("--pace", type=float, default=0.05, help="think time before each command (s)")
    args = p.parse_args()
    SCENARIOS[args.scenario](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

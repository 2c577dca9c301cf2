#!/usr/bin/env python3
"""A small SMTP listener that behaves like a Cisco ESA inbound listener, for making test captures.

It speaks enough ESMTP for the capture scenarios (EHLO/HELO, MAIL, RCPT, DATA, BDAT [LAST],
RSET, NOOP, QUIT, STARTTLS; PIPELINING-friendly reply batching) and writes an ESA on-box
`mail_logs` file for every connection, with the lifecycles of docs/esa-mail-logs.md section 6:

  (a) delivered:        New SMTP ICID / ACCEPT / [TLS success] / Start MID / From / To /
                        [Message-ID] [Subject] / ready / ... / queued / delivery / finished done
  (b) network abort:    ... ICID lost / Message aborted MID Receiving aborted / finished aborted
  (c) idle timeout:     421 on the wire, Message aborted MID Receiving aborted / finished aborted
  (d) sender abort:     QUIT or RSET with an open MID: Receiving aborted by sender / finished aborted
  and `ICID n close` last.

Its clock is deliberately wrong like a real appliance: log time = UTC + --tz-offset + --skew, while
the file header only claims `Time offset from UTC: <tz-offset> seconds`.

Besides the mail log it appends one JSON line per finished connection to --sessions (ground
truth: ICID, client address and port, how it ended) so that expected results can be matched to
the capture. That file is not part of the test material.

Python 3.11 standard library only.
"""
import argparse
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time

HOSTNAME = "esa.example.com"
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
MAX_LINE = 8192


def ctime_str(t):
    """`Thu Aug 14 11:04:31 2014`, day space-padded, from a POSIX time (already shifted)."""
    g = time.gmtime(t)
    return "%s %s %2d %02d:%02d:%02d %d" % (
        DAYS[g.tm_wday], MONTHS[g.tm_mon - 1], g.tm_mday, g.tm_hour, g.tm_min, g.tm_sec, g.tm_year)


class MailLog:
    """Thread-safe writer of the on-box text format, with a wrong clock."""

    def __init__(self, path, tz_offset, skew, version, serial):
        self.tz_offset = tz_offset
        self.skew = skew
        self.lock = threading.Lock()
        self.f = open(path, "a", encoding="utf-8", newline="\n")
        self.info("Begin Logfile")
        self.info(f"Version: {version} SN: {serial}")
        self.info(f"Time offset from UTC: {tz_offset} seconds")

    def info(self, msg):
        with self.lock:
            t = time.time() + self.skew + self.tz_offset
            self.f.write(f"{ctime_str(t)} Info: {msg}\n")
            self.f.flush()


class Counters:
    def __init__(self, icid, mid, dcid):
        self.lock = threading.Lock()
        self.next = {"icid": icid, "mid": mid, "dcid": dcid}

    def take(self, kind):
        with self.lock:
            v = self.next[kind]
            self.next[kind] += 1
            return v


class Closed(Exception):
    """The peer went away: `how` is 'eof' (FIN) or 'reset' (RST or other socket error)."""

    def __init__(self, how):
        super().__init__(how)
        self.how = how


class Conn:
    """Buffered line/byte reader and batched reply writer over a (possibly TLS) socket.

    Replies are queued and flushed only when the server is about to wait for more input (or
    explicitly), so pipelined commands get their replies in one segment as a real MTA does.
    """

    def __init__(self, sock, idle_timeout):
        self.sock = sock
        self.idle_timeout = idle_timeout
        self.buf = bytearray()
        self.out = bytearray()
        sock.settimeout(idle_timeout)

    def flush(self):
        if self.out:
            data = bytes(self.out)
            self.out.clear()
            try:
                self.sock.sendall(data)
            except (ConnectionError, ssl.SSLError, OSError):
                raise Closed("reset")

    def reply(self, text):
        self.out += text.encode("ascii") + b"\r\n"

    def _fill(self):
        self.flush()
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            raise
        except ssl.SSLZeroReturnError:
            raise Closed("eof")
        except (ConnectionError, ssl.SSLError, OSError):
            raise Closed("reset")
        if not data:
            raise Closed("eof")
        self.buf += data

    def readline(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if len(self.buf) > MAX_LINE:
                line = bytes(self.buf)
                self.buf.clear()
                return line
            self._fill()

    def read_counted(self, n, sink=None):
        """Consume exactly n bytes; hand them to sink(bytes) piecewise; never stores them all."""
        left = n
        while left > 0:
            if not self.buf:
                self._fill()
            take = min(left, len(self.buf))
            if sink:
                sink(bytes(self.buf[:take]))
            del self.buf[:take]
            left -= take


class HeaderGrabber:
    """Keeps the first few KB of a message to log Message-ID and Subject like ESA does."""

    def __init__(self, limit=16384):
        self.limit = limit
        self.data = bytearray()

    def feed(self, chunk):
        if len(self.data) < self.limit:
            self.data += chunk[: self.limit - len(self.data)]

    def headers(self):
        text = bytes(self.data).decode("latin-1")
        end = text.find("\r\n\r\n")
        if end >= 0:
            text = text[:end]
        out = {}
        for line in text.split("\r\n"):
            if ":" in line and not line[:1].isspace():
                k, v = line.split(":", 1)
                out.setdefault(k.strip().lower(), v.strip())
        return out


class Session(threading.Thread):
    def __init__(self, server, sock, peer, local):
        super().__init__(daemon=True)
        self.srv = server
        self.raw = sock
        self.client_ip, self.client_port = peer[0], peer[1]
        self.server_ip, self.server_port = local[0], local[1]
        self.icid = server.counters.take("icid")
        self.tls = False
        self.mids = []
        self.mid = None          # open message (MAIL accepted, not yet finished)
        self.mail_from = None
        self.rids = 0
        self.bdat_sink = None
        self.quit = False
        self.start_time = time.time()

    # -- log helpers ------------------------------------------------------------------------
    def log(self, msg):
        self.srv.log.info(msg)

    def abort_open_mid(self, reason):
        if self.mid is not None:
            self.log(f"Message aborted MID {self.mid} {reason}")
            self.log(f"Message finished MID {self.mid} aborted")
            self.mid = None

    # -- protocol ---------------------------------------------------------------------------
    def run(self):
        ended = "unknown"
        c = Conn(self.raw, self.srv.idle_timeout)
        self.log(f"New SMTP ICID {self.icid} interface {self.srv.ifname} ({self.server_ip}) "
                 f"address {self.client_ip} reverse dns host unknown verified no")
        self.log(f"ICID {self.icid} ACCEPT SG UNKNOWNLIST match  SBRS None")
        try:
            if self.srv.args.implicit_tls:
                self.start_tls(c)   # SMTPS (port 465): TLS from the first byte, banner inside
            c.reply(f"220 {HOSTNAME} ESMTP")
            ended = self.loop(c)
        except Closed as e:
            ended = e.how
            self.log(f"ICID {self.icid} lost")
            self.abort_open_mid("Receiving aborted")
        except (socket.timeout, TimeoutError):
            ended = "timeout"
            try:
                c.out.clear()
                c.reply("421 Timed out waiting for successful message injection, disconnecting.")
                c.flush()
            except Closed:
                pass
            self.abort_open_mid("Receiving aborted")
        finally:
            if ended == "quit" and self.tls:
                # Graceful TLS end: send our close_notify and wait (briefly) for the client's.
                try:
                    c.sock.settimeout(2.0)
                    c.sock.unwrap()
                except (OSError, ssl.SSLError, ValueError):
                    pass
            try:
                c.sock.close()
            except OSError:
                pass
            self.log(f"ICID {self.icid} close")
            self.srv.session_done(self, ended)

    def loop(self, c):
        while True:
            line = c.readline()
            text = line.decode("latin-1").rstrip("\r\n")
            verb, _, arg = text.partition(" ")
            verb = verb.upper()
            if verb in ("EHLO", "HELO"):
                self.reset_transaction()
                if verb == "HELO":
                    c.reply(f"250 {HOSTNAME}")
                else:
                    caps = ["8BITMIME", "SIZE 10485760"]
                    if not self.tls and self.srv.ssl_ctx is not None:
                        caps.append("STARTTLS")
                    caps += ["PIPELINING", "CHUNKING"]
                    c.reply(f"250-{HOSTNAME}")
                    for i, cap in enumerate(caps):
                        c.reply(("250 " if i == len(caps) - 1 else "250-") + cap)
            elif verb == "STARTTLS":
                if self.tls or self.srv.ssl_ctx is None:
                    c.reply("503 5.5.1 TLS already active" if self.tls else "502 5.5.1 Not implemented")
                    continue
                c.reply("220 Go ahead with TLS")
                c.flush()
                c.buf.clear()   # anything pipelined after STARTTLS is discarded (RFC 3207)
                self.start_tls(c)
                self.reset_transaction()
            elif verb == "MAIL":
                if self.mid is not None:
                    c.reply("503 5.5.1 Nested MAIL command")
                    continue
                addr = extract_addr(arg)
                if addr is None:
                    c.reply("501 5.5.4 Syntax error in MAIL FROM")
                    continue
                self.mid = self.srv.counters.take("mid")
                self.mids.append(self.mid)
                self.mail_from = addr
                self.rids = 0
                self.bdat_sink = None
                self.log(f"Start MID {self.mid} ICID {self.icid}")
                self.log(f"MID {self.mid} ICID {self.icid} From: <{addr}>")
                c.reply(f"250 sender <{addr}> ok")
            elif verb == "RCPT":
                if self.mid is None:
                    c.reply("503 5.5.1 MAIL first")
                    continue
                addr = extract_addr(arg)
                if not addr:
                    c.reply("501 5.5.4 Syntax error in RCPT TO")
                    continue
                self.log(f"MID {self.mid} ICID {self.icid} RID {self.rids} To: <{addr}>")
                self.rids += 1
                c.reply(f"250 recipient <{addr}> ok")
            elif verb == "DATA":
                if self.mid is None or self.rids == 0:
                    c.reply("503 5.5.1 RCPT first")
                    continue
                c.reply("354 go ahead")
                c.flush()
                size, grab = self.read_data(c)
                self.accept_message(c, size, grab)
            elif verb == "BDAT":
                parts = arg.split()
                try:
                    n = int(parts[0])
                except (IndexError, ValueError):
                    c.reply("501 5.5.4 Syntax error in BDAT")
                    continue
                last = len(parts) > 1 and parts[1].upper() == "LAST"
                if self.mid is None or self.rids == 0:
                    c.read_counted(n)
                    c.reply("503 5.5.1 RCPT first")
                    continue
                if self.bdat_sink is None:
                    self.bdat_sink = (HeaderGrabber(), [0])
                grab, total = self.bdat_sink
                c.read_counted(n, grab.feed)
                total[0] += n
                if last:
                    self.bdat_sink = None
                    self.accept_message(c, total[0], grab)
                else:
                    c.reply(f"250 ok: {n} octets received")
            elif verb == "RSET":
                self.reset_transaction()
                c.reply("250 Ok")
            elif verb == "NOOP":
                c.reply("250 Ok")
            elif verb == "QUIT":
                self.quit = True
                self.abort_open_mid("Receiving aborted by sender")
                c.reply(f"221 {HOSTNAME} closing connection")
                c.flush()
                return "quit"
            elif verb == "":
                c.reply("500 #5.5.1 command not recognized")
            else:
                c.reply("500 #5.5.1 command not recognized")

    def start_tls(self, c):
        """Server side of the TLS handshake on the connection's socket (after STARTTLS, or at
        once for implicit TLS); logs `TLS success` or `TLS failed: ...` like the appliance."""
        try:
            tls = self.srv.ssl_ctx.wrap_socket(c.sock, server_side=True)
        except ssl.SSLError as e:
            # like the appliance's `TLS failed: (code, 'error:...:reason')`
            why = str(e.strerror or e).split("] ", 1)[-1].split(" (_ssl.c", 1)[0]
            self.log(f"ICID {self.icid} TLS failed: ({e.errno}, 'error:SSL routines::{why}')")
            raise Closed("reset")
        except OSError:
            self.log(f"ICID {self.icid} TLS failed")
            raise Closed("reset")
        c.sock = tls
        c.sock.settimeout(self.srv.idle_timeout)
        self.tls = True
        name, proto, _bits = tls.cipher()
        self.log(f"ICID {self.icid} TLS success protocol {proto} cipher {name}")

    def reset_transaction(self):
        # RSET (or a new EHLO / STARTTLS) with an open MID: the sender gave the message up.
        self.abort_open_mid("Receiving aborted by sender")
        self.mail_from = None
        self.rids = 0
        self.bdat_sink = None

    def read_data(self, c):
        """Read a DATA body up to the lone dot; return (unstuffed size, header grabber)."""
        size = 0
        grab = HeaderGrabber()
        while True:
            line = c.readline()
            if line in (b".\r\n", b".\n"):
                return size, grab
            if line.startswith(b".."):
                line = line[1:]
            size += len(line)
            grab.feed(line)

    def accept_message(self, c, size, grab):
        mid = self.mid
        h = grab.headers()
        if "message-id" in h:
            self.log(f"MID {mid} Message-ID '{h['message-id']}'")
        if "subject" in h:
            self.log(f"MID {mid} Subject '{h['subject']}'")
        self.log(f"MID {mid} ready {size} bytes from <{self.mail_from}>")
        self.log(f"MID {mid} matched all recipients for per-recipient policy DEFAULT in the inbound table")
        self.log(f"MID {mid} interim verdict using engine: CASE spam negative")
        self.log(f"MID {mid} using engine: CASE spam negative")
        self.log(f"MID {mid} antivirus negative")
        self.log(f"MID {mid} queued for delivery")
        c.reply(f"250 ok:  Message {mid} accepted")
        self.mid = None
        self.mail_from = None
        self.rids_done = self.rids
        self.rids = 0
        self.srv.deliver(mid, self.rids_done)


def extract_addr(arg):
    a = arg.partition(":")[2].strip()
    if a.startswith("<"):
        end = a.find(">")
        if end < 0:
            return None
        return a[1:end]
    return a.split()[0] if a else None


class Server:
    def __init__(self, args):
        self.args = args
        self.idle_timeout = args.idle_timeout
        self.ifname = args.interface_name
        self.counters = Counters(args.first_icid, args.first_mid, args.first_dcid)
        self.log = MailLog(args.maillog, args.tz_offset, args.skew, args.version, args.serial)
        self.ssl_ctx = None
        if args.cert and args.key:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(args.cert, args.key)
            if args.tls_ciphers:
                ctx.set_ciphers(args.tls_ciphers)
            self.ssl_ctx = ctx
        if args.implicit_tls and self.ssl_ctx is None:
            raise SystemExit("--implicit-tls needs --cert and --key")
        self.sessions_lock = threading.Lock()
        self.deliver_lock = threading.Lock()

    def deliver(self, mid, nrcpt):
        """Log a (fake) delivery to the internal mail server right away, so each delivered MID
        ends with `Message finished MID m done`; no packets are sent for it."""
        with self.deliver_lock:
            dcid = self.counters.take("dcid")
            rids = ", ".join(str(i) for i in range(nrcpt))
            self.log.info(f"New SMTP DCID {dcid} interface {self.args.delivery_from} "
                          f"address {self.args.delivery_to} port 25")
            self.log.info(f"Delivery start DCID {dcid} MID {mid} to RID [{rids}]")
            self.log.info(f"Message done DCID {dcid} MID {mid} to RID [{rids}]")
            self.log.info(f"MID {mid} RID [{rids}] Response '2.0.0 Ok: queued as {mid:X}'")
            self.log.info(f"Message finished MID {mid} done")
            self.log.info(f"DCID {dcid} close")

    def session_done(self, s, ended):
        rec = {
            "icid": s.icid, "client_ip": s.client_ip, "client_port": s.client_port,
            "server_ip": s.server_ip, "server_port": s.server_port, "mids": s.mids,
            "ended": ended, "quit": s.quit, "tls": s.tls, "start": s.start_time, "end": time.time(),
        }
        if self.args.sessions:
            with self.sessions_lock:
                with open(self.args.sessions, "a", encoding="utf-8") as f:
                    f.write(json.dumps(rec) + "\n")

    def serve(self):
        listeners = []
        for addr in self.args.listen:
            fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
            ls = socket.socket(fam, socket.SOCK_STREAM)
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fam == socket.AF_INET6:
                ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            ls.bind((addr, self.args.port))
            ls.listen(128)
            listeners.append(ls)
        for ls in listeners:
            threading.Thread(target=self.accept_loop, args=(ls,), daemon=True).start()
        if self.args.ready_file:
            with open(self.args.ready_file, "w") as f:
                f.write(str(os.getpid()) + "\n")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        while not stop.wait(0.2):
            pass

    def accept_loop(self, ls):
        while True:
            sock, peer = ls.accept()
            Session(self, sock, peer, sock.getsockname()).start()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", action="append", required=True, help="address to listen on (repeatable)")
    p.add_argument("--port", type=int, default=25)
    p.add_argument("--maillog", required=True, help="mail_logs file to append to")
    p.add_argument("--sessions", help="JSON-lines ground truth of finished connections")
    p.add_argument("--ready-file", help="written once listening")
    p.add_argument("--idle-timeout", type=float, default=300.0,
                   help="seconds of silence before 421 (ESA default 300)")
    p.add_argument("--tz-offset", type=int, default=0,
                   help="local time = UTC + this many seconds (written in the log header)")
    p.add_argument("--skew", type=int, default=0, help="clock error in seconds (not in the header)")
    p.add_argument("--first-icid", type=int, default=1)
    p.add_argument("--first-mid", type=int, default=1)
    p.add_argument("--first-dcid", type=int, default=1)
    p.add_argument("--interface-name", default="Management")
    p.add_argument("--version", default="15.0.0-104")
    p.add_argument("--serial", default="4229B3D1E0A7-5C1XK92")
    p.add_argument("--delivery-from", default="192.0.2.25")
    p.add_argument("--delivery-to", default="203.0.113.50")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--tls-ciphers", help="OpenSSL cipher list for TLS 1.2 (default: OpenSSL's)")
    p.add_argument("--implicit-tls", action="store_true",
                   help="TLS from the first byte (SMTPS, port 465): no STARTTLS, banner inside TLS")
    args = p.parse_args()
    Server(args).serve()


if __name__ == "__main__":
    sys.exit(main())

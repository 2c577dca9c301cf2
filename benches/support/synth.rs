//! Synthetic inputs for the benchmarks, shared by `benches/` and `examples/` (included with
//! `#[path]`, so each user sees only what it calls).
//!
//! - [`generate_log`]: a deterministic, seeded, realistic on-box `mail_logs` (the `Begin
//!   Logfile` / `Version` / `Time offset from UTC` header, then interleaved ICID lifecycles:
//!   connect, HAT verdict, optional TLS, `Start MID`, `From`, `RID … To`, `Message-ID`,
//!   `Subject`, `ready`, post-reception noise, `queued`, delivery (`DCID …`), `ICID close`, and
//!   the abort lifecycles — `lost` + `Receiving aborted`, `Receiving aborted by sender`, the
//!   idle timeout — in realistic proportions).
//! - [`connections_for`]: one synthetic connection (TCP facts, SMTP summary, wire verdict) per
//!   ICID of a parsed log, as the capture side would see it, for the correlation benchmark.
#![allow(dead_code)]

use std::collections::BinaryHeap;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use chrono::DateTime;

use icidtrace::capture::FrameRef;
use icidtrace::correlate::WireView;
use icidtrace::maillog::{IcidRecord, LogOutcome, MailLog};
use icidtrace::smtp::{
    Command, MessageData, Recipient, Reply, SessionSummary, TlsSummary, Transaction,
};
use icidtrace::tcp::{CloseEvent, SideStats, TcpConnection};
use icidtrace::types::Timestamp;
use icidtrace::verdict::{Verdict, decide};

// ---------------------------------------------------------------------------------------------
// Randomness: the shared splitmix64 (rng.rs), salted for this generator.

#[path = "rng.rs"]
mod rng;
pub use rng::Rng;

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng::salted(seed, 0x6a09_e667_f3bc_c908)
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    z = (z ^ (z >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    z ^ (z >> 33)
}

// ---------------------------------------------------------------------------------------------
// The log generator.

/// What to generate.
#[derive(Debug, Clone)]
pub struct LogGenOptions {
    pub seed: u64,
    /// Stop starting connections once about this many bytes are out (the open lifecycles are
    /// then finished, so the file ends a few KB past it).
    pub size: Option<u64>,
    /// Stop after this many connections (ICIDs).
    pub icids: Option<u64>,
    /// Mean new connections per second.
    pub rate: f64,
    /// Appliance-local time of the first line, seconds since the epoch (read as UTC).
    pub start: i64,
    /// The `Time offset from UTC` header value (local = UTC + offset).
    pub time_offset: i64,
    /// Post-reception noise (`MID n …` policy and scanning lines) and delivery lines. Off: only
    /// the reception lifecycle (a lean log for the correlation benchmark).
    pub noise: bool,
}

impl Default for LogGenOptions {
    fn default() -> Self {
        LogGenOptions {
            seed: 1,
            size: None,
            icids: None,
            rate: 20.0,
            // Mon 2024-03-04 08:00:00
            start: 1_709_539_200,
            time_offset: 3600,
            noise: true,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, Default)]
pub struct LogGenStats {
    pub bytes: u64,
    pub lines: u64,
    pub icids: u64,
    pub mids: u64,
    pub last_time: i64,
}

/// A line waiting for its time: ordered by (time in ms, sequence), earliest first.
struct Pending {
    ms: i64,
    seq: u64,
    text: String,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.ms, self.seq) == (o.ms, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.ms, o.seq).cmp(&(self.ms, self.seq))
    }
}

const LISTENERS: [(&str, &str); 2] = [("Data 1", "192.0.2.25"), ("Data 2", "192.0.2.26")];
const DOMAINS: [&str; 24] = [
    "example.com",
    "example.net",
    "example.org",
    "mail.example.co.uk",
    "news.example.de",
    "billing.example.io",
    "corp.example",
    "shop.example.fr",
    "lists.example.edu",
    "notify.example.app",
    "bank.example.ch",
    "hr.example.jp",
    "travel.example.es",
    "invoices.example.it",
    "support.example.nl",
    "alerts.example.se",
    "promo.example.biz",
    "partners.example.at",
    "ops.example.dk",
    "team.example.fi",
    "sales.example.pl",
    "press.example.be",
    "events.example.pt",
    "labs.example.no",
];
const LOCAL_DOMAINS: [&str; 3] = ["mycompany.com", "mycompany.de", "subsidiary.example"];
const USERS: [&str; 16] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil",
];
const SUBJECTS: [&str; 14] = [
    "Invoice {n} for your order",
    "Re: meeting notes",
    "Your weekly report",
    "FW: project update {n}",
    "Password reset request",
    "Quarterly results Q{q}",
    "Welcome to the team!",
    "Re: Re: contract draft v{n}",
    "Shipping confirmation #{n}",
    "Newsletter - March edition",
    "Action required: verify your account",
    "Lunch on Friday?",
    "[ticket {n}] Printer on 3rd floor",
    "Urgent: payment overdue",
];
const COUNTRIES: [&str; 8] = [
    "United States",
    "Germany",
    "United Kingdom",
    "France",
    "Netherlands",
    "Ireland",
    "Japan",
    "not enabled",
];
const CIPHERS: [(&str, &str); 4] = [
    ("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384"),
    ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"),
    ("TLSv1.3", "TLS_AES_256_GCM_SHA384"),
    ("TLSv1.3", "TLS_AES_128_GCM_SHA256"),
];
const ATTACHMENTS: [&str; 6] = [
    "invoice.pdf",
    "report.xlsx",
    "Banner.gif",
    "image001.png",
    "contract_v2.docx",
    "=D1=82=D0=B5=D1=81=D1=82.rst",
];

/// Client IP pools: big senders (a few thousand IPs, skewed) and a long tail.
struct Clients {
    seed: u64,
    /// Cumulative weights of the big-sender pool.
    cdf: Vec<f64>,
}

const PROVIDER_IPS: usize = 5000;
const TAIL_IPS: u64 = 400_000;

impl Clients {
    fn new(seed: u64) -> Self {
        let mut acc = 0.0;
        let cdf = (0..PROVIDER_IPS)
            .map(|k| {
                acc += 1.0 / (k as f64 + 20.0);
                acc
            })
            .collect();
        Clients { seed, cdf }
    }

    /// (IP, rDNS or None, is a big sender).
    fn pick(&self, rng: &mut Rng) -> (Ipv4Addr, Option<String>, bool) {
        if rng.chance(0.4) {
            let total = *self.cdf.last().expect("pool");
            let x = rng.unit() * total;
            let k = self.cdf.partition_point(|&c| c < x).min(PROVIDER_IPS - 1);
            let h = mix(self.seed ^ (k as u64).wrapping_mul(0x9e37_79b9));
            let ip = Ipv4Addr::new(
                [40, 209, 52, 104][k % 4],
                (h >> 8) as u8,
                (h >> 16) as u8,
                (h >> 24) as u8 | 1,
            );
            let o = ip.octets();
            let name = format!(
                "mail-{}-{}-{}.outbound.{}",
                o[1],
                o[2],
                o[3],
                DOMAINS[k % DOMAINS.len()]
            );
            (ip, Some(name), true)
        } else {
            let k = rng.below(TAIL_IPS);
            let h = mix(self.seed.rotate_left(17) ^ k.wrapping_mul(0x85eb_ca6b));
            let a = [23u8, 45, 62, 77, 91, 103, 146, 176, 185, 193, 200, 212][(h % 12) as usize];
            let ip = Ipv4Addr::new(a, (h >> 8) as u8, (h >> 16) as u8, (h >> 24) as u8 | 1);
            let name = if h & 0x300 == 0 {
                None
            } else {
                let o = ip.octets();
                Some(format!(
                    "host-{}-{}-{}-{}.dyn.{}",
                    o[0],
                    o[1],
                    o[2],
                    o[3],
                    DOMAINS[(h >> 40) as usize % DOMAINS.len()]
                ))
            };
            (ip, name, false)
        }
    }
}

/// An outbound delivery connection.
struct Dcid {
    id: u64,
    left: u32,
}

/// Streams a generated log to `out`.
pub struct LogGen<'a, W: Write> {
    o: LogGenOptions,
    rng: Rng,
    clients: Clients,
    out: &'a mut W,
    heap: BinaryHeap<Pending>,
    seq: u64,
    prefix_sec: i64,
    prefix: String,
    stats: LogGenStats,
    next_icid: u64,
    next_mid: u64,
    next_dcid: u64,
    dcids: Vec<Dcid>,
    next_rcid: u64,
    /// ms of the last connection start.
    now: i64,
}

/// Writes a whole log; see [`LogGenOptions`].
pub fn generate_log<W: Write>(o: &LogGenOptions, out: &mut W) -> io::Result<LogGenStats> {
    let mut g = LogGen::new(o.clone(), out);
    g.run()?;
    Ok(g.stats)
}

/// A log of about `icids` connections, in memory.
pub fn log_bytes(o: &LogGenOptions) -> Vec<u8> {
    let mut v = Vec::new();
    generate_log(o, &mut v).expect("writing to memory");
    v
}

impl<'a, W: Write> LogGen<'a, W> {
    fn new(o: LogGenOptions, out: &'a mut W) -> Self {
        let mut rng = Rng::new(o.seed);
        let next_icid = rng.range(1_000_000, 60_000_000);
        let next_mid = rng.range(1_000_000, 30_000_000);
        let next_dcid = rng.range(100_000, 6_000_000);
        let next_rcid = rng.range(100_000, 900_000);
        LogGen {
            clients: Clients::new(o.seed),
            now: o.start * 1000,
            o,
            rng,
            out,
            heap: BinaryHeap::new(),
            seq: 0,
            prefix_sec: i64::MIN,
            prefix: String::new(),
            stats: LogGenStats::default(),
            next_icid,
            next_mid,
            next_dcid,
            dcids: Vec::new(),
            next_rcid,
        }
    }

    fn at(&mut self, ms: i64, text: String) {
        self.seq += 1;
        self.heap.push(Pending {
            ms,
            seq: self.seq,
            text,
        });
    }

    fn write_line(&mut self, ms: i64, text: &str) -> io::Result<()> {
        let sec = ms.div_euclid(1000);
        if sec != self.prefix_sec {
            self.prefix_sec = sec;
            let t = DateTime::from_timestamp(sec, 0).expect("time in range");
            self.prefix = t.format("%a %b %e %H:%M:%S %Y Info: ").to_string();
        }
        self.out.write_all(self.prefix.as_bytes())?;
        self.out.write_all(text.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.stats.bytes += (self.prefix.len() + text.len() + 1) as u64;
        self.stats.lines += 1;
        self.stats.last_time = sec;
        Ok(())
    }

    /// Writes every pending line before `ms`.
    fn flush_until(&mut self, ms: i64) -> io::Result<()> {
        while self.heap.peek().is_some_and(|p| p.ms < ms) {
            let p = self.heap.pop().expect("peeked");
            self.write_line(p.ms, &p.text)?;
        }
        Ok(())
    }

    fn done(&self) -> bool {
        self.o.icids.is_some_and(|n| self.stats.icids >= n)
            || self.o.size.is_some_and(|s| self.stats.bytes >= s)
            || (self.o.icids.is_none() && self.o.size.is_none())
    }

    fn run(&mut self) -> io::Result<()> {
        let t0 = self.now;
        self.write_line(t0, "Begin Logfile")?;
        let serial = format!(
            "Version: 15.0.1-030 SN: 4229{:016X}-{:012X}",
            self.rng.next_u64(),
            self.rng.next_u64() >> 16
        );
        self.write_line(t0, &serial)?;
        let off = format!("Time offset from UTC: {} seconds", self.o.time_offset);
        self.write_line(t0, &off)?;
        while !self.done() {
            let gap = self.rng.exp(1000.0 / self.o.rate).max(1.0) as i64;
            self.now += gap;
            self.flush_until(self.now)?;
            self.connection();
            // Rare system lines that are not lifecycle lines.
            if self.rng.chance(0.0005) {
                let n = self.rng.below(4);
                let t = self.now + 3;
                self.at(
                    t,
                    format!(
                        "Internal SMTP system attempting to send a message to alerts@mycompany.com with subject 'Warning <System> esa{n}: queue size' (attempt #0)."
                    ),
                );
            }
        }
        self.flush_until(i64::MAX)?;
        self.out.flush()
    }

    fn addr(&mut self, local: bool) -> String {
        let u = *self.rng.pick(&USERS);
        let n = self.rng.below(100);
        let d = if local {
            *self.rng.pick(&LOCAL_DOMAINS)
        } else {
            *self.rng.pick(&DOMAINS)
        };
        format!("{u}{n}@{d}")
    }

    /// One inbound connection and everything it leads to.
    fn connection(&mut self) {
        let icid = self.next_icid;
        self.next_icid += 1;
        self.stats.icids += 1;
        let mut t = self.now;
        let (ip, rdns, big) = self.clients.pick(&mut self.rng);
        let (ifname, ifip) = if self.rng.chance(0.7) {
            LISTENERS[0]
        } else {
            LISTENERS[1]
        };
        let verified = if rdns.is_some() && self.rng.chance(0.8) {
            "yes"
        } else {
            "no"
        };
        self.at(
            t,
            format!(
                "New SMTP ICID {icid} interface {ifname} ({ifip}) address {ip} reverse dns host {} verified {verified}",
                rdns.as_deref().unwrap_or("unknown")
            ),
        );
        let country = *self.rng.pick(&COUNTRIES);
        // The kind of connection.
        let roll = self.rng.unit();
        let reject = if big { roll < 0.02 } else { roll < 0.45 };
        if reject {
            let sbrs = -(self.rng.range(30, 100) as f64) / 10.0;
            self.at(
                t,
                format!(
                    "ICID {icid} REJECT SG BLACKLIST match sbrs[-10.0:-3.0] SBRS {sbrs:.1} country {country}"
                ),
            );
            t += self.rng.range(5, 900) as i64;
            self.at(t, format!("ICID {icid} close"));
            return;
        }
        if self.rng.chance(0.02) {
            self.at(
                t,
                format!(
                    "ICID {icid} RELAY SG RELAYLIST match {ip} SBRS not enabled country not enabled"
                ),
            );
        } else if big {
            let sbrs = self.rng.range(30, 100) as f64 / 10.0;
            self.at(
                t,
                format!("ICID {icid} ACCEPT SG WHITELIST match sbrs[3.0:10.0] SBRS {sbrs:.1} country {country}"),
            );
        } else {
            let sbrs = self.rng.range(0, 60) as f64 / 10.0 - 1.0;
            self.at(
                t,
                format!("ICID {icid} ACCEPT SG UNKNOWNLIST match sbrs[-1.0:10.0] SBRS {sbrs:.1} country {country}"),
            );
        }
        if self.rng.chance(if big { 0.9 } else { 0.5 }) {
            t += self.rng.range(20, 400) as i64;
            let (p, c) = *self.rng.pick(&CIPHERS);
            self.at(
                t,
                format!("ICID {icid} TLS success protocol {p} cipher {c}"),
            );
        } else if self.rng.chance(0.01) {
            t += self.rng.range(20, 400) as i64;
            self.at(
                t,
                format!("ICID {icid} TLS failed: (336151570, 'error:14094412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate')"),
            );
        }
        // How it ends: delivered (most), no message, lost, or one of the reception aborts.
        let end = self.rng.unit();
        let msgs = if self.rng.chance(0.88) {
            1
        } else {
            self.rng.range(2, 5) as u32
        };
        if end < 0.07 {
            // Connected, said EHLO (or not), left.
            t += self.rng.range(100, 3000) as i64;
            if self.rng.chance(0.4) {
                self.at(t, format!("ICID {icid} lost"));
            }
            self.at(t, format!("ICID {icid} close"));
            return;
        }
        let abort = if end < 0.11 {
            Some(Abort::Network)
        } else if end < 0.14 {
            Some(Abort::Sender)
        } else if end < 0.15 {
            Some(Abort::Idle)
        } else {
            None
        };
        // Delivered messages (for an abort: maybe some before the aborted one).
        let delivered = match abort {
            None => msgs,
            Some(_) => u32::from(self.rng.chance(0.1)),
        };
        for _ in 0..delivered {
            t = self.message(icid, t, None);
        }
        match abort {
            None => {
                t += self.rng.range(10, 1500) as i64;
                self.at(t, format!("ICID {icid} close"));
            }
            Some(a) => {
                self.message(icid, t, Some(a));
            }
        }
    }

    /// One message of connection `icid` from time `t`; returns the time of its `ready` (or of
    /// the abort). With `abort`, the message is not finished and the connection ends.
    fn message(&mut self, icid: u64, mut t: i64, abort: Option<Abort>) -> i64 {
        let mid = self.next_mid;
        self.next_mid += 1;
        self.stats.mids += 1;
        t += self.rng.range(50, 2000) as i64;
        self.at(t, format!("Start MID {mid} ICID {icid}"));
        let from = if self.rng.chance(0.03) {
            String::new()
        } else {
            self.addr(false)
        };
        self.at(t, format!("MID {mid} ICID {icid} From: <{from}>"));
        let rcpts = if self.rng.chance(0.75) {
            1
        } else if self.rng.chance(0.8) {
            self.rng.range(2, 3)
        } else {
            self.rng.range(4, 10)
        };
        let mut rid = 0;
        for _ in 0..rcpts {
            t += self.rng.range(0, 300) as i64;
            let to = self.addr(true);
            if self.rng.chance(0.02) {
                self.at(
                    t,
                    format!("MID {mid} ICID {icid} To: <{to}> Rejected by Receiving Control"),
                );
            } else {
                self.at(t, format!("MID {mid} ICID {icid} RID {rid} To: <{to}>"));
                rid += 1;
            }
        }
        if let Some(a) = abort {
            let (wait, lost, reason) = match a {
                Abort::Network => (
                    self.rng.range(100, 30_000) as i64,
                    true,
                    "Receiving aborted",
                ),
                Abort::Sender => (
                    self.rng.range(50, 5_000) as i64,
                    false,
                    "Receiving aborted by sender",
                ),
                Abort::Idle => (
                    300_000 + self.rng.range(0, 900) as i64,
                    false,
                    "Receiving aborted",
                ),
            };
            t += wait;
            if lost {
                self.at(t, format!("ICID {icid} lost"));
            }
            self.at(t, format!("Message aborted MID {mid} {reason}"));
            self.at(t, format!("Message finished MID {mid} aborted"));
            self.at(t, format!("ICID {icid} close"));
            return t;
        }
        // DATA.
        t += self.rng.range(200, 6000) as i64;
        let host = *self.rng.pick(&DOMAINS);
        let idn = self.rng.next_u64();
        self.at(
            t,
            format!("MID {mid} Message-ID '<{idn:016x}.{mid}@{host}>'"),
        );
        let subj = self
            .rng
            .pick(&SUBJECTS)
            .replace("{n}", &self.rng.range(1000, 99999).to_string())
            .replace("{q}", &self.rng.range(1, 4).to_string());
        self.at(t, format!("MID {mid} Subject '{subj}'"));
        let bytes = (self.rng.exp(40_000.0) as u64).max(600);
        self.at(t, format!("MID {mid} ready {bytes} bytes from <{from}>"));
        let ready = t;
        if self.o.noise {
            self.after_ready(mid, rid, &from, ready);
        }
        ready
    }

    /// Scanning, policy and delivery of a received message.
    fn after_ready(&mut self, mid: u64, rcpts: u64, from: &str, ready: i64) {
        let mut t = ready;
        let dom = from.split('@').nth(1).unwrap_or("example.com").to_string();
        let notes: Vec<String> = {
            let r = &mut self.rng;
            let mut v = vec![
                "matched all recipients for per-recipient policy DEFAULT in the inbound table"
                    .to_string(),
            ];
            v.push(format!(
                "SPF: helo identity postmaster@{dom} {}",
                if r.chance(0.5) { "None" } else { "Pass" }
            ));
            v.push(format!(
                "SPF: mailfrom identity {from} Pass (v=spf1 include:_spf.{dom} ~all)"
            ));
            v.push(format!(
                "DKIM: pass signature verified (d={dom} s=selector1 i=@{dom})"
            ));
            v.push(format!(
                "DMARC: Message from domain {dom}, DMARC pass (SPF aligned True, DKIM aligned True)"
            ));
            if r.chance(0.6) {
                v.push(format!(
                    "SDR: Domains for which SDR is requested: reverse DNS host: Not Present, helo: {dom}, env-from: {dom}, header-from: {dom}, reply-to: Not Present"
                ));
                v.push(format!(
                    "SDR: Consolidated Sender Threat Level: Neutral, Threat Category: N/A, Suspected Domain(s) : N/A (others: N/A). Youngest Domain Age: 10 years 4 months 2 days for domain: {dom}"
                ));
            }
            v.push("interim verdict using engine: CASE spam negative".into());
            v.push("using engine: CASE spam negative".into());
            v.push("interim AV verdict using Sophos CLEAN".into());
            v.push("antivirus negative".into());
            if r.chance(0.3) {
                let n = r.range(1, 3);
                for _ in 0..n {
                    v.push(format!("attachment '{}'", r.pick(&ATTACHMENTS)));
                }
                v.push("AMP file reputation verdict : CLEAN".into());
            }
            v.push("Outbreak Filters: verdict negative".into());
            if r.chance(0.2) {
                v.push(format!(
                    "URL Reputation: tracking URLs in message with hosts: www.{dom}, cdn.{dom}"
                ));
            }
            v
        };
        for n in notes {
            t += self.rng.range(0, 250) as i64;
            self.at(t, format!("MID {mid} {n}"));
        }
        t += self.rng.range(0, 200) as i64;
        // Spam dropped after scanning, or quarantined, or delivered.
        let fate = self.rng.unit();
        if fate < 0.04 {
            self.at(t, format!("Message aborted MID {mid} Dropped by CASE"));
            self.at(t, format!("Message finished MID {mid} done"));
            return;
        }
        self.at(t, format!("MID {mid} queued for delivery"));
        let rid_list = (0..rcpts.max(1))
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        t += self.rng.range(20, 1500) as i64;
        if fate < 0.06 {
            let rcid = self.next_rcid;
            self.next_rcid += 1;
            self.at(
                t,
                format!(
                    "RPC Delivery start RCID {rcid} MID {mid} to local IronPort Spam Quarantine"
                ),
            );
            t += self.rng.range(100, 1500) as i64;
            self.at(t, format!("EUQ: Quarantined MID {mid}"));
            self.at(t, format!("RPC Message done RCID {rcid} MID {mid}"));
            self.at(t, format!("Message finished MID {mid} done"));
            return;
        }
        // A pooled delivery connection.
        let slot = self.rng.below(8) as usize;
        if self.dcids.len() < 8 {
            self.dcids.resize_with(8, || Dcid { id: 0, left: 0 });
        }
        if self.dcids[slot].left == 0 {
            let old = self.dcids[slot].id;
            if old != 0 {
                self.at(t, format!("DCID {old} close"));
            }
            let id = self.next_dcid;
            self.next_dcid += 1;
            let left = self.rng.range(10, 100) as u32;
            self.dcids[slot] = Dcid { id, left };
            let dst = 10 + slot;
            self.at(
                t,
                format!("New SMTP DCID {id} interface 192.0.2.25 address 10.1.1.{dst} port 25"),
            );
            let (p, c) = *self.rng.pick(&CIPHERS);
            self.at(t, format!("DCID {id} TLS success protocol {p} cipher {c}"));
        }
        self.dcids[slot].left -= 1;
        let dcid = self.dcids[slot].id;
        self.at(
            t,
            format!("Delivery start DCID {dcid} MID {mid} to RID [{rid_list}]"),
        );
        t += self.rng.range(20, 800) as i64;
        if self.rng.chance(0.01) {
            self.at(
                t,
                format!("Bounced: DCID {dcid} MID {mid} to RID 0 - 5.1.0 - Unknown address error ('550', ['5.1.1 <x@mycompany.com>: Recipient address rejected: User unknown']) []"),
            );
        } else if self.rng.chance(0.01) {
            self.at(
                t,
                format!("Delayed: DCID {dcid} MID {mid} to RID 0 - 4.1.0 - Unknown address error ('452', ['Mailbox temporarily full.'])[]"),
            );
        } else {
            self.at(
                t,
                format!("Message done DCID {dcid} MID {mid} to RID [{rid_list}] [('X-IronPort-AV', 'E=Sophos;i=\"6.0,1\"'), ('X-Amp-Result', 'SKIPPED')]"),
            );
            let q = self.rng.next_u64();
            self.at(
                t,
                format!("MID {mid} RID [{rid_list}] Response '2.0.0 Ok: queued as {q:012X}'"),
            );
        }
        self.at(t, format!("Message finished MID {mid} done"));
    }
}

#[derive(Debug, Clone, Copy)]
enum Abort {
    Network,
    Sender,
    Idle,
}

// ---------------------------------------------------------------------------------------------
// Connections for the correlation benchmark.

/// One connection's wire facts, owned.
#[derive(Debug, Clone)]
pub struct SynthConn {
    pub tcp: TcpConnection,
    pub smtp: SessionSummary,
    pub verdict: Verdict,
    /// The ICID it was made from (what correlation should find).
    pub icid: u64,
}

impl SynthConn {
    pub fn view(&self) -> WireView<'_> {
        WireView {
            tcp: &self.tcp,
            smtp: &self.smtp,
            verdict: &self.verdict,
        }
    }
}

const NS: i64 = Timestamp::NANOS_PER_SEC;

fn close_event(at: Timestamp, n: u64) -> CloseEvent {
    CloseEvent {
        at,
        frame: FrameRef { file: 0, number: n },
        ttl: 52,
        ip_id: Some((n & 0xffff) as u16),
        seq: (mix(n) & 0xffff_ffff) as u32,
    }
}

fn reply(code: u16, at: Timestamp) -> Option<Reply> {
    Some(Reply {
        code: Some(code),
        at,
        text: String::new(),
    })
}

/// One connection per ICID of `log` that has a connect line and a remote IP, as the capture
/// would show it: the log's clock is `time_offset` seconds ahead of UTC and truncated to whole
/// seconds; the client port, the sub-second start and the close are drawn from `seed`.
pub fn connections_for(log: &MailLog, time_offset: i64, seed: u64) -> Vec<SynthConn> {
    let mut rng = Rng::new(seed ^ 0xc0ff_ee00);
    let mut out = Vec::with_capacity(log.icids.len());
    for (n, rec) in log.icids.iter().enumerate() {
        let n = n as u64;
        let (Some(connect), Some(ip)) = (rec.connect, rec.remote_ip.as_ref().and_then(|r| r.ip()))
        else {
            continue;
        };
        let server_ip = rec
            .interface_ip
            .as_ref()
            .and_then(|i| i.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 25)));
        let utc = |t: icidtrace::maillog::LocalTime| (t.0.and_utc().timestamp() - time_offset) * NS;
        // Log second = floor(first packet + accept latency + offset).
        let first = Timestamp(utc(connect) + (rng.unit() * 0.97 * NS as f64) as i64 - NS / 50);
        let end = rec.close.or(rec.lost).map(|c| {
            let base = utc(c) + (rng.unit() * 0.9 * NS as f64) as i64;
            Timestamp(base.max(first.0 + NS / 100))
        });
        let last = end.map_or(Timestamp(first.0 + 2 * NS), |e| Timestamp(e.0 + NS / 20));
        let mut client = SideStats {
            packets: 10,
            first_at: Some(first),
            last_at: Some(last),
            syn_at: Some(first),
            ..SideStats::default()
        };
        let mut server = SideStats {
            packets: 9,
            first_at: Some(first),
            last_at: Some(last),
            ..SideStats::default()
        };
        let (smtp, close) = session(log, rec, first, end, &mut rng);
        if let Some(e) = end {
            let ev = Some(close_event(e, n * 20 + 9));
            match close {
                Close::ServerFin => server.first_fin = ev,
                Close::ClientRst => client.first_rst = ev,
                Close::ClientFin => client.first_fin = ev,
            }
        }
        let tcp = TcpConnection {
            client: SocketAddr::new(ip, rng.range(1024, 65535) as u16),
            server: SocketAddr::new(server_ip, 25),
            first_seen: first,
            last_seen: last,
            first_frame: FrameRef {
                file: 0,
                number: n * 20 + 1,
            },
            last_frame: FrameRef {
                file: 0,
                number: n * 20 + 10,
            },
            handshake_seen: true,
            handshake_done_at: None,
            from_client: client,
            from_server: server,
            open_at_end: end.is_none(),
            anomalies: Vec::new(),
        };
        let verdict = decide(&tcp, &smtp);
        out.push(SynthConn {
            tcp,
            smtp,
            verdict,
            icid: rec.icid,
        });
    }
    // Capture order: by first packet.
    out.sort_by_key(|c| (c.tcp.first_seen, c.tcp.client.port()));
    out
}

/// Who closes first, and how.
enum Close {
    ClientFin,
    ClientRst,
    ServerFin,
}

/// The SMTP summary and the close that go with an ICID's log outcome.
fn session(
    log: &MailLog,
    rec: &IcidRecord,
    first: Timestamp,
    end: Option<Timestamp>,
    rng: &mut Rng,
) -> (SessionSummary, Close) {
    let at = |k: i64| Timestamp(first.0 + k * NS / 10);
    let mut s = SessionSummary {
        banner: reply(220, at(0)),
        greeting: Some(("EHLO".into(), "client.example".into())),
        ..SessionSummary::default()
    };
    if rec.tls == Some(true) {
        s.starttls = Some(Command {
            verb: "STARTTLS".into(),
            at: at(1),
            reply: reply(220, at(1)),
            ..Command::default()
        });
        s.tls = Some(TlsSummary {
            handshake_completed: true,
            ..TlsSummary::default()
        });
    } else {
        for m in log.mids_of(rec) {
            let completed = m.ready.is_some();
            s.transactions.push(Transaction {
                mail_at: at(2),
                mail_from: m.from.clone().unwrap_or_default(),
                mail_reply: reply(250, at(2)),
                rcpt_to: m
                    .recipients
                    .iter()
                    .map(|r| Recipient {
                        address: r.address.clone().unwrap_or_default(),
                        reply: reply(250, at(3)),
                    })
                    .collect(),
                data: completed.then(|| MessageData {
                    command_at: at(4),
                    go_ahead: reply(354, at(4)),
                    end_at: Some(at(5)),
                    bytes: m.ready_bytes.unwrap_or(0),
                    final_reply: reply(250, at(5)),
                    ..MessageData::default()
                }),
                ended_by: None,
                rcpt_dropped: 0,
            });
        }
    }
    let quit = |s: &mut SessionSummary| {
        s.quit = Some(Command {
            verb: "QUIT".into(),
            at: end.unwrap_or(at(6)),
            reply: reply(221, end.unwrap_or(at(6))),
            ..Command::default()
        });
    };
    let close = match rec.outcome {
        LogOutcome::Delivered | LogOutcome::NoMessage => {
            quit(&mut s);
            Close::ClientFin
        }
        LogOutcome::AbortedBySender => {
            quit(&mut s);
            if let Some(t) = s.transactions.last_mut() {
                t.ended_by = Some("QUIT".into());
            }
            Close::ClientFin
        }
        LogOutcome::Aborted | LogOutcome::Lost => {
            if rng.chance(0.5) {
                Close::ClientRst
            } else {
                Close::ClientFin
            }
        }
        LogOutcome::Timeout => {
            s.unprompted_replies.push(Reply {
                code: Some(421),
                at: end.unwrap_or(at(6)),
                text: "Timed out waiting for successful message injection, disconnecting.".into(),
            });
            Close::ServerFin
        }
        LogOutcome::Rejected => {
            s.banner = reply(554, at(0));
            Close::ServerFin
        }
        LogOutcome::Incomplete | LogOutcome::Open => Close::ClientFin,
    };
    (s, close)
}

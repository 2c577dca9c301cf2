//! Capture-side hot paths, each alone on in-memory input: decoding a record into a packet,
//! reassembling a direction (in order, and with neighbours swapped), and the SMTP session over
//! a dialogue and its DATA body (text lines, base64 lines, many short commands).
//!
//! ```sh
//! cargo bench --bench capture
//! ```
//!
//! Whole runs on generated multi-GB captures, side by side with libpcap and tshark, are
//! `scripts/bench-captures.sh` (docs/performance.md).

use divan::Bencher;
use divan::counter::BytesCount;
use etherparse::PacketBuilder;
use icidtrace::capture::FrameRef;
use icidtrace::capture::decode::decode;
use icidtrace::smtp::Session;
use icidtrace::tcp::assembler::Assembler;
use icidtrace::types::{Side, Timestamp};

fn main() {
    divan::main();
}

/// Ethernet link type in pcap headers.
const LINKTYPE_ETHERNET: u32 = 1;
const MSS: usize = 1448;

/// A message body of `lines` lines made by `line(i)`, CRLF-terminated.
fn body(bytes: usize, line: impl Fn(usize) -> String) -> Vec<u8> {
    let mut b = b"From: <a@example.org>\r\nSubject: bench\r\n\r\n".to_vec();
    let mut i = 0;
    while b.len() < bytes {
        b.extend_from_slice(line(i).as_bytes());
        b.extend_from_slice(b"\r\n");
        i += 1;
    }
    b
}

fn text_body(bytes: usize) -> Vec<u8> {
    body(bytes, |i| {
        format!("Line {i} of a message. It has sentences, some dots, and an end.")
    })
}

fn base64_body(bytes: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    body(bytes, |i| {
        (0..76)
            .map(|k| ALPHABET[(i * 31 + k * 7) % 64] as char)
            .collect()
    })
}

/// Full-size data segments and their ACKs, as Ethernet frames.
fn frames(n: usize) -> Vec<Vec<u8>> {
    let payload = text_body(MSS * n);
    let mut out = Vec::with_capacity(n * 2);
    for (i, chunk) in payload.chunks(MSS).take(n).enumerate() {
        let seq = 1_000_000u32.wrapping_add((i * MSS) as u32);
        let data = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([198, 51, 100, 10], [192, 0, 2, 25], 63)
            .tcp(40000, 25, seq, 64240)
            .ack(7)
            .psh();
        let mut f = Vec::with_capacity(data.size(chunk.len()));
        data.write(&mut f, chunk).expect("frame");
        out.push(f);
        let ack = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
            .ipv4([192, 0, 2, 25], [198, 51, 100, 10], 64)
            .tcp(25, 40000, 7, 65160)
            .ack(seq.wrapping_add(chunk.len() as u32));
        let mut f = Vec::with_capacity(ack.size(0));
        ack.write(&mut f, &[]).expect("frame");
        out.push(f);
    }
    out
}

#[divan::bench]
fn decode_frames(bencher: Bencher) {
    let frames = frames(2000);
    let bytes: usize = frames.iter().map(Vec::len).sum();
    bencher.counter(BytesCount::new(bytes)).bench(|| {
        let mut payload = 0usize;
        for (i, f) in frames.iter().enumerate() {
            let frame = FrameRef {
                file: 0,
                number: i as u64,
            };
            if let Ok(p) = decode(LINKTYPE_ETHERNET, f, frame, Timestamp(i as i64)) {
                payload += p.payload.len();
            }
        }
        payload
    });
}

/// One direction's stream in segments of `MSS`, in the order given by `order`.
fn reassemble(bencher: Bencher, swap_pairs: bool) {
    let stream = text_body(8 << 20);
    let mut segs: Vec<(u64, &[u8])> = stream
        .chunks(MSS)
        .enumerate()
        .map(|(i, c)| ((i * MSS) as u64, c))
        .collect();
    if swap_pairs {
        // Every other pair arrives swapped: each swap holds one segment out of order.
        for pair in segs.chunks_mut(4) {
            if pair.len() >= 2 {
                pair.swap(0, 1);
            }
        }
    }
    bencher.counter(BytesCount::new(stream.len())).bench(|| {
        let mut a = Assembler::new(4 << 20);
        let mut out = 0usize;
        for (off, data) in &segs {
            a.insert(*off, data, &mut |b| out += b.len());
        }
        out
    });
}

#[divan::bench]
fn reassembly_in_order(bencher: Bencher) {
    reassemble(bencher, false);
}

#[divan::bench]
fn reassembly_reordered(bencher: Bencher) {
    reassemble(bencher, true);
}

/// A whole SMTP session with the given body, the client's bytes in segments of `MSS`.
fn session(bencher: Bencher, body: Vec<u8>) {
    let t = Timestamp::from_secs(1_700_000_000);
    let mut client = b"EHLO client.example.org\r\nMAIL FROM:<a@example.org>\r\n\
RCPT TO:<b@example.com>\r\nDATA\r\n"
        .to_vec();
    let commands_end = client.len();
    client.extend_from_slice(&body);
    client.extend_from_slice(b".\r\nQUIT\r\n");
    let replies: [&[u8]; 6] = [
        b"220 esa.example.com ESMTP\r\n",
        b"250-esa.example.com\r\n250-PIPELINING\r\n250 SIZE 10485760\r\n",
        b"250 sender ok\r\n",
        b"250 recipient ok\r\n",
        b"354 go ahead\r\n",
        b"250 ok: Message 1 accepted\r\n",
    ];
    bencher.counter(BytesCount::new(client.len())).bench(|| {
        let mut s = Session::new();
        s.on_data(Side::Server, t, replies[0]);
        // The commands one by one, each answered, then the body in full-size segments.
        let mut at = 0;
        for (line, reply) in client[..commands_end]
            .split_inclusive(|&b| b == b'\n')
            .zip(&replies[1..])
        {
            s.on_data(Side::Client, t, line);
            s.on_data(Side::Server, t, reply);
            at += line.len();
        }
        for seg in client[at..].chunks(MSS) {
            s.on_data(Side::Client, t, seg);
        }
        s.on_data(Side::Server, t, replies[5]);
        s.summary()
    });
}

#[divan::bench]
fn smtp_text_body(bencher: Bencher) {
    session(bencher, text_body(8 << 20));
}

#[divan::bench]
fn smtp_base64_body(bencher: Bencher) {
    session(bencher, base64_body(8 << 20));
}

/// Many short pipelined commands and their replies: the line splitter and the reply matching.
#[divan::bench]
fn smtp_commands(bencher: Bencher) {
    let t = Timestamp::from_secs(1_700_000_000);
    // Batches of 30 pipelined MAIL/RCPT/RSET, each batch answered as a whole.
    let batches: Vec<(Vec<u8>, Vec<u8>)> = (0..700)
        .map(|b| {
            let mut c = Vec::new();
            let mut r = Vec::new();
            for i in 0..30 {
                let n = b * 30 + i;
                c.extend_from_slice(format!("MAIL FROM:<sender{n}@example.org>\r\n").as_bytes());
                c.extend_from_slice(format!("RCPT TO:<rcpt{n}@example.com>\r\n").as_bytes());
                c.extend_from_slice(b"RSET\r\n");
                r.extend_from_slice(b"250 sender ok\r\n250 recipient ok\r\n250 reset\r\n");
            }
            (c, r)
        })
        .collect();
    let bytes: usize = batches.iter().map(|(c, r)| c.len() + r.len()).sum();
    bencher.counter(BytesCount::new(bytes)).bench(|| {
        let mut s = Session::new();
        s.on_data(Side::Server, t, b"220 esa.example.com ESMTP\r\n");
        s.on_data(Side::Client, t, b"EHLO client.example.org\r\n");
        s.on_data(
            Side::Server,
            t,
            b"250-esa.example.com\r\n250 PIPELINING\r\n",
        );
        for (c, r) in &batches {
            for seg in c.chunks(MSS) {
                s.on_data(Side::Client, t, seg);
            }
            for seg in r.chunks(MSS) {
                s.on_data(Side::Server, t, seg);
            }
        }
        s.summary()
    });
}

//! Per-direction stream reassembly.
//!
//! Contract: segments are placed by their 64-bit *stream offset* (the caller unwraps sequence
//! numbers through [`super::seq::SeqNumber`]); bytes come out exactly once, in order, as soon as
//! they are contiguous. When two copies of the same byte differ, the first one received wins
//! (what the receiver most likely saw) and the conflict is reported. Out-of-order bytes are held
//! up to a cap; a hole can be skipped on request (the capture lost it), which reports its length.
//! This is the only place payload bytes are copied, and only while they wait for a hole to fill.

use std::collections::BTreeMap;

/// What one insertion did, for the flow's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Insert {
    /// Bytes of the segment that had been received before (retransmission or overlap).
    pub duplicate_bytes: u64,
    /// Some of those bytes differ from the copy received first.
    pub conflict: bool,
    /// Bytes dropped because the out-of-order buffer was full.
    pub dropped_bytes: u64,
}

#[derive(Debug)]
pub struct Assembler {
    /// Offset of the next byte to deliver.
    next: u64,
    /// Out-of-order segments keyed by offset; never overlapping, all beyond `next`.
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    cap: usize,
    /// Last bytes delivered, kept to detect retransmissions that carry different data.
    tail: Tail,
}

/// Bytes of the stream kept behind `next` (a power of two).
const TAIL_KEEP: usize = 512;

/// The last bytes delivered, in a ring indexed by stream offset (the byte at offset `o` sits at
/// `o % capacity`), so that keeping them costs one copy of each byte and no shifting. The ring
/// grows in powers of two up to [`TAIL_KEEP`] as bytes come, so that a direction that sends
/// little (the server's replies) keeps little.
#[derive(Debug, Default)]
struct Tail {
    ring: Vec<u8>,
    /// Bytes before the stream's next offset that the ring holds.
    valid: usize,
}

impl Tail {
    fn clear(&mut self) {
        self.valid = 0;
    }

    /// Keeps `data`, which ends at stream offset `end`.
    fn push(&mut self, end: u64, data: &[u8]) {
        let want = (self.valid + data.len()).min(TAIL_KEEP);
        if want > self.ring.len() {
            // Grow, moving the bytes kept to their places in the larger ring.
            let (new_cap, old_cap) = (want.next_power_of_two().min(TAIL_KEEP), self.ring.len());
            let mut ring = vec![0u8; new_cap];
            let start = end - data.len() as u64 - self.valid as u64;
            for o in start..end - data.len() as u64 {
                ring[o as usize % new_cap] = self.ring[o as usize % old_cap];
            }
            self.ring = ring;
        }
        let cap = self.ring.len();
        let data = &data[data.len().saturating_sub(cap)..];
        let first = (end - data.len() as u64) as usize % cap;
        let split = (cap - first).min(data.len());
        self.ring[first..first + split].copy_from_slice(&data[..split]);
        self.ring[..data.len() - split].copy_from_slice(&data[split..]);
        self.valid = (self.valid + data.len()).min(cap);
    }

    /// Whether `data`, placed at `offset`, differs from the kept bytes it overlaps (those before
    /// `next`, the stream offset after the last byte kept).
    fn differs(&self, next: u64, offset: u64, data: &[u8]) -> bool {
        let tail_start = next - self.valid as u64;
        let from = offset.max(tail_start);
        let to = (offset + data.len() as u64).min(next);
        if from >= to || self.ring.is_empty() {
            return false;
        }
        let cap = self.ring.len();
        let incoming = &data[(from - offset) as usize..(to - offset) as usize];
        let first = from as usize % cap;
        let split = (cap - first).min(incoming.len());
        incoming[..split] != self.ring[first..first + split]
            || incoming[split..] != self.ring[..incoming.len() - split]
    }
}

impl Assembler {
    pub fn new(cap: usize) -> Self {
        Assembler {
            next: 0,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            cap,
            tail: Tail::default(),
        }
    }

    /// Offset of the next byte to deliver.
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Changes the cap on waiting bytes for the insertions to come (bytes already waiting stay,
    /// even above it).
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap;
    }

    /// Offset of the first byte waiting beyond a hole, if any.
    pub fn first_pending(&self) -> Option<u64> {
        self.pending.keys().next().copied()
    }

    /// Places `data` at `offset` and hands every byte that became contiguous to `deliver`.
    pub fn insert(&mut self, offset: u64, data: &[u8], deliver: &mut dyn FnMut(&[u8])) -> Insert {
        let mut result = Insert::default();
        let end = offset + data.len() as u64;
        if data.is_empty() || end <= self.next {
            if !data.is_empty() {
                result.duplicate_bytes = data.len() as u64;
                result.conflict = self.differs_from_tail(offset, data);
            }
            return result;
        }
        let (mut offset, mut data) = (offset, data);
        if offset < self.next {
            let skip = (self.next - offset) as usize;
            result.duplicate_bytes += skip as u64;
            result.conflict |= self.differs_from_tail(offset, &data[..skip]);
            data = &data[skip..];
            offset = self.next;
        }
        if offset == self.next && self.pending.is_empty() {
            // The common case: in order, nothing waiting. No copy.
            self.advance(data, deliver);
            return result;
        }
        self.store(offset, data, &mut result);
        self.drain(deliver);
        result
    }

    /// Gives up on the hole before the first pending segment (or up to `upto`, whichever is
    /// smaller), delivers what follows it, and returns the number of bytes skipped.
    pub fn skip_hole(&mut self, upto: Option<u64>, deliver: &mut dyn FnMut(&[u8])) -> u64 {
        let target = match (self.first_pending(), upto) {
            (Some(p), Some(u)) => p.min(u),
            (Some(p), None) => p,
            (None, Some(u)) => u,
            (None, None) => return 0,
        };
        if target <= self.next {
            return 0;
        }
        let skipped = target - self.next;
        self.next = target;
        self.tail.clear();
        self.drain(deliver);
        skipped
    }

    fn advance(&mut self, data: &[u8], deliver: &mut dyn FnMut(&[u8])) {
        self.next += data.len() as u64;
        self.tail.push(self.next, data);
        deliver(data);
    }

    /// Whether `data` at `offset` (all before `next`) disagrees with the bytes delivered there,
    /// as far as the kept tail reaches.
    fn differs_from_tail(&self, offset: u64, data: &[u8]) -> bool {
        self.tail.differs(self.next, offset, data)
    }

    /// Stores the parts of `data` not already pending (first copy wins).
    fn store(&mut self, offset: u64, data: &[u8], result: &mut Insert) {
        let end = offset + data.len() as u64;
        let mut cursor = offset;
        // Segments that could overlap [offset, end): the one starting before, and those inside.
        let start_key = self
            .pending
            .range(..=offset)
            .next_back()
            .map(|(k, _)| *k)
            .unwrap_or(offset);
        let overlapping: Vec<(u64, u64)> = self
            .pending
            .range(start_key..end)
            .map(|(k, v)| (*k, *k + v.len() as u64))
            .filter(|(_, e)| *e > offset)
            .collect();
        let mut pieces: Vec<(u64, u64)> = Vec::new();
        for (s, e) in overlapping {
            if s > cursor {
                pieces.push((cursor, s));
            }
            let o_from = s.max(offset);
            let o_to = e.min(end);
            if o_from < o_to {
                result.duplicate_bytes += o_to - o_from;
                let existing = &self.pending[&s][(o_from - s) as usize..(o_to - s) as usize];
                let incoming = &data[(o_from - offset) as usize..(o_to - offset) as usize];
                result.conflict |= existing != incoming;
            }
            cursor = cursor.max(e);
        }
        if cursor < end {
            pieces.push((cursor, end));
        }
        for (s, e) in pieces {
            let len = (e - s) as usize;
            if self.pending_bytes + len > self.cap {
                result.dropped_bytes += len as u64;
                continue;
            }
            self.pending_bytes += len;
            self.pending.insert(
                s,
                data[(s - offset) as usize..(e - offset) as usize].to_vec(),
            );
        }
    }

    fn drain(&mut self, deliver: &mut dyn FnMut(&[u8])) {
        while let Some(entry) = self.pending.first_entry() {
            let start = *entry.key();
            if start > self.next {
                break;
            }
            let seg = entry.remove();
            self.pending_bytes -= seg.len();
            let end = start + seg.len() as u64;
            if end > self.next {
                let from = (self.next - start) as usize;
                self.advance(&seg[from..], deliver);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn collect(a: &mut Assembler, off: u64, data: &[u8], out: &mut Vec<u8>) -> Insert {
        a.insert(off, data, &mut |b| out.extend_from_slice(b))
    }

    #[test]
    fn in_order_and_out_of_order() {
        let mut a = Assembler::new(1 << 20);
        let mut out = Vec::new();
        collect(&mut a, 5, b"fghij", &mut out);
        assert!(out.is_empty());
        collect(&mut a, 0, b"abcde", &mut out);
        assert_eq!(out, b"abcdefghij");
    }

    #[test]
    fn first_copy_wins_and_conflict_is_reported() {
        let mut a = Assembler::new(1 << 20);
        let mut out = Vec::new();
        collect(&mut a, 4, b"EFGH", &mut out);
        let r = collect(&mut a, 2, b"cdXXij", &mut out);
        assert!(r.conflict);
        collect(&mut a, 0, b"ab", &mut out);
        assert_eq!(out, b"abcdEFGH");
        let r = collect(&mut a, 0, b"abcd", &mut out);
        assert_eq!(r.duplicate_bytes, 4);
        assert!(!r.conflict);
        let r = collect(&mut a, 0, b"zz", &mut out);
        assert!(r.conflict);
    }

    #[test]
    fn skip_hole_reports_length() {
        let mut a = Assembler::new(1 << 20);
        let mut out = Vec::new();
        collect(&mut a, 0, b"ab", &mut out);
        collect(&mut a, 10, b"kl", &mut out);
        let skipped = a.skip_hole(None, &mut |b| out.extend_from_slice(b));
        assert_eq!(skipped, 8);
        assert_eq!(out, b"abkl");
        assert_eq!(a.next_offset(), 12);
    }

    #[test]
    fn cap_drops_and_counts() {
        let mut a = Assembler::new(4);
        let mut out = Vec::new();
        let r = collect(&mut a, 10, b"abcdef", &mut out);
        assert_eq!(r.dropped_bytes, 6);
        assert_eq!(a.pending_bytes(), 0);
    }

    /// The obviously-correct model: one slot per byte, first write wins, the delivered stream is
    /// the contiguous prefix.
    fn model(
        stream_len: usize,
        segments: &[(usize, usize)],
        original: &[u8],
        corrupt: &[bool],
    ) -> Vec<u8> {
        let mut slots: Vec<Option<u8>> = vec![None; stream_len];
        for (i, (s, l)) in segments.iter().enumerate() {
            for k in *s..(*s + *l).min(stream_len) {
                if slots[k].is_none() {
                    slots[k] = Some(if corrupt[i] {
                        original[k] ^ 0xff
                    } else {
                        original[k]
                    });
                }
            }
        }
        slots.iter().map_while(|b| *b).collect()
    }

    proptest! {
        #[test]
        fn matches_slow_model(
            original in proptest::collection::vec(any::<u8>(), 1..300),
            cuts in proptest::collection::vec((0usize..300, 1usize..80, any::<bool>()), 0..60),
        ) {
            let n = original.len();
            // Random (possibly overlapping, duplicated, corrupt) segments, then the whole stream
            // cut in order so that everything is eventually covered.
            let mut segs: Vec<(usize, usize)> = Vec::new();
            let mut corrupt = Vec::new();
            for (s, l, c) in &cuts {
                let s = s % n;
                segs.push((s, (*l).min(n - s)));
                corrupt.push(*c && s % 3 == 0);
            }
            let mut at = 0;
            while at < n {
                let l = (n - at).min(1 + (at * 7919) % 50);
                segs.push((at, l));
                corrupt.push(false);
                at += l;
            }
            let mut a = Assembler::new(1 << 20);
            let mut out = Vec::new();
            for (i, (s, l)) in segs.iter().enumerate() {
                let bytes: Vec<u8> = original[*s..*s + *l]
                    .iter()
                    .map(|b| if corrupt[i] { b ^ 0xff } else { *b })
                    .collect();
                a.insert(*s as u64, &bytes, &mut |b| out.extend_from_slice(b));
            }
            let expected = model(n, &segs, &original, &corrupt);
            prop_assert_eq!(out.len(), n);
            prop_assert_eq!(out, expected);
            prop_assert_eq!(a.pending_bytes(), 0);
        }

        #[test]
        fn honest_segments_reassemble_to_original(
            original in proptest::collection::vec(any::<u8>(), 1..400),
            order in proptest::collection::vec(any::<u32>(), 1..100),
            sizes in proptest::collection::vec(1usize..60, 1..100),
        ) {
            let n = original.len();
            let mut segs = Vec::new();
            let mut at = 0;
            let mut i = 0;
            while at < n {
                let l = sizes[i % sizes.len()].min(n - at);
                segs.push((at, l));
                // Duplicate some, with an overlap shifted by a few bytes.
                if i % 4 == 1 && at >= 3 { segs.push((at - 3, (l + 3).min(n - at + 3))); }
                at += l;
                i += 1;
            }
            // Reorder by the random keys.
            let mut keyed: Vec<(u32, (usize, usize))> = segs.iter().enumerate()
                .map(|(k, s)| (order[k % order.len()].wrapping_mul(k as u32 + 1), *s)).collect();
            keyed.sort_by_key(|(k, _)| *k);
            let mut a = Assembler::new(1 << 20);
            let mut out = Vec::new();
            for (_, (s, l)) in keyed {
                a.insert(s as u64, &original[s..s + l], &mut |b| out.extend_from_slice(b));
            }
            prop_assert_eq!(out, original);
        }
            /// The kept tail (a ring that grows, then wraps) tells a retransmission of the last
        /// [`TAIL_KEEP`] bytes from one carrying different bytes, whatever the delivery sizes.
        #[test]
        fn tail_tells_same_from_different(
            chunks in proptest::collection::vec(1usize..1500, 1..12),
            from_end in 1usize..=TAIL_KEEP,
            len in 1usize..1500,
            flip in proptest::option::of(0usize..1500),
        ) {
            let total: usize = chunks.iter().sum();
            let stream: Vec<u8> = (0..total).map(|i| (i * 7 + i / 251) as u8).collect();
            let mut a = Assembler::new(1 << 20);
            let mut off = 0;
            for c in &chunks {
                a.insert(off as u64, &stream[off..off + c], &mut |_| {});
                off += c;
            }
            let start = total.saturating_sub(from_end);
            let end = (start + len).min(total);
            let mut copy = stream[start..end].to_vec();
            let flipped = flip.filter(|&f| f < copy.len());
            if let Some(f) = flipped {
                copy[f] ^= 0x55;
            }
            let r = a.insert(start as u64, &copy, &mut |_| {});
            prop_assert_eq!(r.duplicate_bytes, copy.len() as u64);
            prop_assert_eq!(r.conflict, flipped.is_some());
        }
    }
}

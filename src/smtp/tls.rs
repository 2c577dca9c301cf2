//! TLS record watching after STARTTLS (or on implicit TLS).
//!
//! Contract: one [`TlsWatch`] per direction is fed that direction's bytes in any split and
//! counts record headers by content type into a [`TlsDirection`] (handshake, ChangeCipherSpec,
//! alert, application data and its byte count, the first alert's time). Record bodies are
//! skipped, never stored: the payload is encrypted anyway, and the record types alone tell a
//! graceful TLS close (an alert) from a bare cut. A header that is not TLS (wrong type,
//! version not 3.x, length over the TLS maximum) stops parsing for that direction; every byte
//! from there on is `garbage_bytes`. So does a gap that ends outside the current record, as the
//! next header's position is then unknown.

use crate::types::Timestamp;

use super::TlsDirection;

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const HEARTBEAT: u8 = 24;

/// TLSCiphertext.length may be at most 2^14 + 2048.
const MAX_RECORD: u32 = (1 << 14) + 2048;

/// Whether a byte can start a TLS record; used to tell TLS from plaintext after STARTTLS.
pub(crate) fn is_record_type(b: u8) -> bool {
    (CHANGE_CIPHER_SPEC..=APPLICATION_DATA).contains(&b)
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TlsWatch {
    header: [u8; 5],
    have: usize,
    /// Body bytes of the current record still to skip.
    body_left: u32,
    content_type: u8,
    /// Stopped parsing: not TLS, or sync lost in a gap.
    lost: bool,
}

impl TlsWatch {
    pub fn feed(&mut self, dir: &mut TlsDirection, at: Timestamp, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.lost {
                dir.garbage_bytes = dir.garbage_bytes.saturating_add(bytes.len() as u64);
                return;
            }
            if self.body_left > 0 {
                let n = (self.body_left as usize).min(bytes.len());
                self.skip_body(dir, n as u64);
                bytes = &bytes[n..];
                continue;
            }
            let n = (5 - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have < 5 {
                return;
            }
            self.have = 0;
            let [kind, major, minor, hi, lo] = self.header;
            let len = u32::from(u16::from_be_bytes([hi, lo]));
            let valid = (CHANGE_CIPHER_SPEC..=HEARTBEAT).contains(&kind)
                && major == 3
                && minor <= 4
                && len <= MAX_RECORD;
            if !valid {
                self.lost = true;
                dir.garbage_bytes = dir.garbage_bytes.saturating_add(5);
                continue;
            }
            self.content_type = kind;
            self.body_left = len;
            dir.last_record_at = Some(at);
            match kind {
                CHANGE_CIPHER_SPEC => {
                    dir.change_cipher_spec_records =
                        dir.change_cipher_spec_records.saturating_add(1)
                }
                ALERT => {
                    dir.alert_records = dir.alert_records.saturating_add(1);
                    dir.first_alert_at.get_or_insert(at);
                }
                HANDSHAKE => dir.handshake_records = dir.handshake_records.saturating_add(1),
                APPLICATION_DATA => {
                    dir.application_data_records = dir.application_data_records.saturating_add(1)
                }
                _ => {}
            }
        }
    }

    /// `bytes` were lost in this direction.
    pub fn gap(&mut self, dir: &mut TlsDirection, bytes: u64) {
        if self.lost {
            return;
        }
        if self.have == 0 && bytes <= u64::from(self.body_left) {
            self.skip_body(dir, bytes);
        } else {
            self.lost = true;
        }
    }

    fn skip_body(&mut self, dir: &mut TlsDirection, n: u64) {
        self.body_left -= n as u32;
        if self.content_type == APPLICATION_DATA {
            dir.application_data_bytes = dir.application_data_bytes.saturating_add(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, len: usize) -> Vec<u8> {
        let mut r = vec![kind, 3, 3, (len >> 8) as u8, len as u8];
        r.extend(std::iter::repeat_n(0xAB, len));
        r
    }

    #[test]
    fn counts_records_in_any_split() {
        let mut stream = record(HANDSHAKE, 300);
        stream.extend(record(CHANGE_CIPHER_SPEC, 1));
        stream.extend(record(APPLICATION_DATA, 1000));
        stream.extend(record(ALERT, 2));
        for step in [1, 3, 5, 7, 64, stream.len()] {
            let mut w = TlsWatch::default();
            let mut d = TlsDirection::default();
            for (i, c) in stream.chunks(step).enumerate() {
                w.feed(&mut d, Timestamp(i as i64), c);
            }
            assert_eq!(d.handshake_records, 1);
            assert_eq!(d.change_cipher_spec_records, 1);
            assert_eq!(d.application_data_records, 1);
            assert_eq!(d.application_data_bytes, 1000);
            assert_eq!(d.alert_records, 1);
            assert!(d.first_alert_at.is_some());
            assert_eq!(d.garbage_bytes, 0, "step {step}");
        }
    }

    #[test]
    fn garbage_stops_parsing() {
        let mut w = TlsWatch::default();
        let mut d = TlsDirection::default();
        w.feed(&mut d, Timestamp(0), b"EHLO x\r\n");
        assert_eq!(d.garbage_bytes, 8);
        w.feed(&mut d, Timestamp(0), &record(ALERT, 2));
        assert_eq!(d.alert_records, 0);
        assert_eq!(d.garbage_bytes, 15);
    }

    #[test]
    fn gap_inside_a_record_keeps_sync() {
        let mut w = TlsWatch::default();
        let mut d = TlsDirection::default();
        let r = record(APPLICATION_DATA, 100);
        w.feed(&mut d, Timestamp(0), &r[..20]);
        w.gap(&mut d, 50);
        w.feed(&mut d, Timestamp(0), &r[70..]);
        w.feed(&mut d, Timestamp(1), &record(ALERT, 2));
        assert_eq!(d.application_data_bytes, 100);
        assert_eq!(d.alert_records, 1);
        w.gap(&mut d, 10);
        w.feed(&mut d, Timestamp(2), &record(ALERT, 2));
        assert_eq!(d.alert_records, 1);
        assert_eq!(d.garbage_bytes, 7);
    }
}

//! Optional BPF filter, compiled by libpcap (the `pcap` crate, cargo feature `libpcap`).
//!
//! Contract: a [`Filter`] holds one compiled program per link type seen (pcapng files can mix
//! link types), compiled lazily against a dead capture of that link type, and runs it on the
//! raw record bytes exactly as tcpdump would. A filter that does not compile is reported with
//! the filter text and libpcap's message. Built without the `libpcap` feature, asking for a
//! filter is an error that says so.

#[cfg(feature = "libpcap")]
mod imp {
    use super::super::link;

    struct Compiled {
        link_type: u32,
        /// `Err` keeps libpcap's message for link types the filter does not compile for.
        program: Result<pcap::BpfProgram, String>,
    }

    /// A BPF filter expression and its programs, one per link type.
    pub struct Filter {
        expr: String,
        compiled: Vec<Compiled>,
    }

    /// LINKTYPE_* (file) values to the DLT_* values libpcap's compiler expects.
    fn dlt(link_type: u32) -> i32 {
        match link_type {
            // LINKTYPE_RAW and the legacy raw values are DLT_RAW (12 on Linux and most BSDs).
            12 | 14 | 101 => 12,
            other => i32::try_from(other).unwrap_or(i32::MAX),
        }
    }

    impl Filter {
        pub fn new(expr: &str) -> Result<Filter, String> {
            Ok(Filter {
                expr: expr.to_string(),
                compiled: Vec::new(),
            })
        }

        pub fn expr(&self) -> &str {
            &self.expr
        }

        /// Compiles the filter for `link_type` unless done already; `Err` is libpcap's message.
        pub fn prepare(&mut self, link_type: u32) -> Result<(), String> {
            let idx = self.index(link_type);
            match &self.compiled[idx].program {
                Ok(_) => Ok(()),
                Err(m) => Err(m.clone()),
            }
        }

        fn index(&mut self, link_type: u32) -> usize {
            if let Some(i) = self.compiled.iter().position(|c| c.link_type == link_type) {
                return i;
            }
            let program = pcap::Capture::dead(pcap::Linktype(dlt(link_type)))
                .map_err(|e| e.to_string())
                .and_then(|cap| cap.compile(&self.expr, true).map_err(|e| message(&e)));
            let program = program.map_err(|m| {
                if link::is_supported(link_type) {
                    m
                } else {
                    format!("{m} (link type {})", link::name(link_type))
                }
            });
            self.compiled.push(Compiled { link_type, program });
            self.compiled.len() - 1
        }

        /// Whether the record passes the filter; `Err` (libpcap's message) when the filter
        /// does not compile for this link type.
        pub fn apply(&mut self, link_type: u32, data: &[u8]) -> Result<bool, &str> {
            let idx = self.index(link_type);
            match &self.compiled[idx].program {
                Ok(p) => Ok(p.filter(data)),
                Err(m) => Err(m),
            }
        }
    }

    fn message(e: &pcap::Error) -> String {
        match e {
            pcap::Error::PcapError(m) => m.clone(),
            other => other.to_string(),
        }
    }
}

#[cfg(not(feature = "libpcap"))]
mod imp {
    /// Stand-in without libpcap: it cannot be constructed.
    pub struct Filter {
        never: std::convert::Infallible,
    }

    impl Filter {
        pub fn new(_expr: &str) -> Result<Filter, String> {
            Err("icidtrace was built without libpcap (cargo feature `libpcap`)".to_string())
        }

        pub fn expr(&self) -> &str {
            match self.never {}
        }

        pub fn prepare(&mut self, _link_type: u32) -> Result<(), String> {
            match self.never {}
        }

        pub fn apply(&mut self, _link_type: u32, _data: &[u8]) -> Result<bool, &str> {
            match self.never {}
        }
    }
}

pub use imp::Filter;

/// True when this build can apply BPF filters.
pub const AVAILABLE: bool = cfg!(feature = "libpcap");

#[cfg(all(test, feature = "libpcap"))]
mod tests {
    use super::*;

    #[test]
    fn compiles_per_link_type_and_filters() {
        let mut f = Filter::new("tcp port 25").unwrap();
        assert!(f.prepare(1).is_ok());
        assert!(f.prepare(113).is_ok());
        assert!(f.prepare(276).is_ok());
        assert!(f.prepare(101).is_ok());
        assert!(f.prepare(0).is_ok());
        // Ethernet + IPv4 + TCP to port 25.
        let b = etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 25, 1, 100);
        let mut v = Vec::new();
        b.write(&mut v, b"x").unwrap();
        assert_eq!(f.apply(1, &v), Ok(true));
        let mut g = Filter::new("tcp port 26").unwrap();
        assert_eq!(g.apply(1, &v), Ok(false));
        // Raw IP: the same packet without the Ethernet header.
        assert_eq!(f.apply(101, &v[14..]), Ok(true));
    }

    #[test]
    fn bad_filter_gives_libpcaps_message() {
        let mut f = Filter::new("tcp port").unwrap();
        let e = f.prepare(1).unwrap_err();
        assert!(!e.is_empty(), "{e}");
        assert_eq!(f.apply(1, &[0u8; 60]), Err(e.as_str()));
        assert_eq!(f.expr(), "tcp port");
    }
}

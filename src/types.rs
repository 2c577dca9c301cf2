//! Shared vocabulary of every stage: points in time and the two sides of a connection.
//!
//! These types carry no protocol rules; they exist so that each stage speaks of time and of
//! "client" and "server" in the same typed way, and so that the JSON field values are spelled
//! in one place.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};

/// A point in time, nanoseconds since the Unix epoch, UTC.
///
/// Captures carry micro- or nanosecond times; logs whole seconds. Keeping one integer type
/// makes ordering and differences exact and cheap on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const NANOS_PER_SEC: i64 = 1_000_000_000;

    pub fn from_secs_nanos(secs: i64, nanos: u32) -> Self {
        Timestamp(
            secs.saturating_mul(Self::NANOS_PER_SEC)
                .saturating_add(nanos as i64),
        )
    }

    pub fn from_secs(secs: i64) -> Self {
        Self::from_secs_nanos(secs, 0)
    }

    pub fn secs(self) -> i64 {
        self.0.div_euclid(Self::NANOS_PER_SEC)
    }

    pub fn subsec_nanos(self) -> u32 {
        self.0.rem_euclid(Self::NANOS_PER_SEC) as u32
    }

    /// Seconds from `earlier` to `self`, as a float (negative when `self` is earlier). Any two
    /// timestamps will do, even the absurd ones of a damaged input: no overflow.
    pub fn seconds_since(self, earlier: Timestamp) -> f64 {
        (i128::from(self.0) - i128::from(earlier.0)) as f64 / Self::NANOS_PER_SEC as f64
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.secs(), self.subsec_nanos()).unwrap_or_default()
    }

    /// RFC 3339 in UTC with microseconds, the form used in every output.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let dt = DateTime::parse_from_rfc3339(&s).map_err(serde::de::Error::custom)?;
        Ok(Timestamp::from_secs_nanos(
            dt.timestamp(),
            dt.timestamp_subsec_nanos(),
        ))
    }
}

/// One end of a TCP connection. The client is the side that sent the SYN (or, with no SYN
/// seen, the side talking to the SMTP port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_has_microseconds_and_z() {
        let t = Timestamp::from_secs_nanos(1_407_999_871, 123_456_000);
        assert_eq!(t.to_rfc3339(), "2014-08-14T07:04:31.123456Z");
    }

    #[test]
    fn negative_times_split_euclidean() {
        let t = Timestamp(-1);
        assert_eq!(t.secs(), -1);
        assert_eq!(t.subsec_nanos(), 999_999_999);
    }

    #[test]
    fn serde_round_trip() {
        let t = Timestamp::from_secs_nanos(1_600_000_000, 5_000);
        let j = serde_json::to_string(&t).unwrap();
        let back: Timestamp = serde_json::from_str(&j).unwrap();
        assert_eq!(back, t);
    }
}

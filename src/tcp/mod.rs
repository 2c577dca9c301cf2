//! Stage 2: TCP connections from packets.
//!
//! Contract: takes the capture stage's [`crate::capture::Packet`] views in capture order and
//! produces, per connection, the TCP facts ([`TcpConnection`]) and the two reassembled byte
//! streams, handed to a [`StreamSink`] chosen by the caller. Sequence numbers are handled only
//! through [`SeqNumber`]. This stage is the only one that copies payload bytes (while they wait
//! for a hole to fill) and it never interprets them.

pub mod assembler;
pub mod flow;
pub mod seq;

pub use flow::{
    CloseEvent, FlowConfig, FlowTable, SideStats, StreamSink, TcpAnomaly, TcpConnection,
};
pub use seq::SeqNumber;

//! Stage 2: TCP flows from packets.

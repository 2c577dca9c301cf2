//! Reading a file ahead on another thread.
//!
//! Contract: [`ReadAhead`] is a [`Read`] over any `Read + Send` source whose `read` calls (for
//! a file: the kernel copying from the page cache or waiting for the disk) run on a thread of
//! their own, a few blocks ahead of the reader. The bytes, their order and the first error come
//! out exactly as the source gave them; after an error or the end, nothing more is read. The
//! thread ends when the source ends or the `ReadAhead` is dropped. Memory: [`BLOCKS`] blocks of
//! [`BLOCK`] bytes.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

/// Bytes asked of the source at once.
pub const BLOCK: usize = 1 << 20;
/// Blocks in flight (filled and waiting, or being filled).
pub const BLOCKS: usize = 4;

/// Whether reading ahead can pay: more than one core is ours to run on (the process's CPU
/// affinity counts, so `taskset -c 0` says no). `ICIDTRACE_READ_AHEAD=0` or `1` decides instead
/// (for measuring both ways).
pub fn pays() -> bool {
    match std::env::var("ICIDTRACE_READ_AHEAD").as_deref() {
        Ok("0") => false,
        Ok("1") => true,
        _ => thread::available_parallelism().is_ok_and(|n| n.get() > 1),
    }
}

enum Msg {
    Data(Vec<u8>),
    Error(io::Error),
}

pub struct ReadAhead {
    filled: Receiver<Msg>,
    /// Emptied blocks go back to the reading thread to be filled again.
    empty: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ReadAhead {
    pub fn new<R: Read + Send + 'static>(mut source: R) -> io::Result<ReadAhead> {
        let (to_reader, filled) = sync_channel::<Msg>(BLOCKS);
        let (empty, from_reader) = sync_channel::<Vec<u8>>(BLOCKS);
        for _ in 0..BLOCKS {
            // Cannot fail: the channel holds exactly this many.
            let _ = empty.send(Vec::with_capacity(BLOCK));
        }
        thread::Builder::new()
            .name("read-ahead".into())
            .spawn(move || {
                while let Ok(mut block) = from_reader.recv() {
                    block.resize(BLOCK, 0);
                    let mut n = 0;
                    let msg = loop {
                        match source.read(&mut block[n..]) {
                            Ok(0) => break None,
                            Ok(k) => {
                                n += k;
                                if n == block.len() {
                                    break None;
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => break Some(e),
                        }
                    };
                    let end = n < BLOCK;
                    block.truncate(n);
                    // The bytes before an error come first; the reader gone means stop.
                    if n > 0 && to_reader.send(Msg::Data(block)).is_err() {
                        return;
                    }
                    if let Some(e) = msg {
                        let _ = to_reader.send(Msg::Error(e));
                        return;
                    }
                    if end {
                        return;
                    }
                }
            })?;
        Ok(ReadAhead {
            filled,
            empty,
            current: Vec::new(),
            pos: 0,
            done: false,
        })
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.done {
                return Ok(0);
            }
            let old = std::mem::take(&mut self.current);
            // The thread may have finished: then the block is not needed.
            let _ = self.empty.try_send(old);
            self.pos = 0;
            match self.filled.recv() {
                Ok(Msg::Data(block)) => self.current = block,
                Ok(Msg::Error(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The thread ended after the last block: end of input.
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that gives `data` in uneven pieces, then fails if asked to.
    struct Pieces {
        data: Vec<u8>,
        at: usize,
        fail_at_end: bool,
    }

    impl Read for Pieces {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at == self.data.len() {
                return if self.fail_at_end {
                    Err(io::Error::other("disk on fire"))
                } else {
                    Ok(0)
                };
            }
            let n = buf
                .len()
                .min(1 + self.at % 7919)
                .min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 977) as u8).collect()
    }

    #[test]
    fn same_bytes_in_order_across_blocks() {
        for len in [
            0,
            1,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            3 * BLOCK + 12345,
            9 * BLOCK,
        ] {
            let data = bytes(len);
            let mut r = ReadAhead::new(Pieces {
                data: data.clone(),
                at: 0,
                fail_at_end: false,
            })
            .unwrap();
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out.len(), data.len());
            assert!(out == data, "bytes differ for length {len}");
            assert_eq!(r.read(&mut [0u8; 8]).unwrap(), 0, "stays at the end");
        }
    }

    #[test]
    fn bytes_before_the_error_then_the_error() {
        let data = bytes(2 * BLOCK + 5);
        let mut r = ReadAhead::new(Pieces {
            data: data.clone(),
            at: 0,
            fail_at_end: true,
        })
        .unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        let err = loop {
            match r.read(&mut buf) {
                Ok(0) => panic!("the error must come, not the end"),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert_eq!(out, data);
        assert!(err.to_string().contains("disk on fire"));
    }

    #[test]
    fn dropping_the_reader_stops_the_thread() {
        let data = bytes(20 * BLOCK);
        let mut r = ReadAhead::new(Pieces {
            data,
            at: 0,
            fail_at_end: false,
        })
        .unwrap();
        let mut buf = [0u8; 100];
        r.read_exact(&mut buf).unwrap();
        drop(r); // must not hang or panic
    }
}

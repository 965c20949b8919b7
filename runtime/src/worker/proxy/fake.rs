//! A scripted upstream for the proxy's unit tests: what each read returns (bytes, a stall,
//! the close, a reset) and how much each write takes, so that a test can drive the proxy's
//! steps through every split point and every way an upstream misbehaves, without a socket.

use super::pool::UpstreamIo;
use std::collections::VecDeque;
use std::io::ErrorKind;

/// What one read of the fake upstream returns.
#[derive(Debug, Clone)]
pub(super) enum Reply {
    /// These bytes (a read wanting fewer gets the start, and the rest stays for the next).
    Data(Vec<u8>),
    /// `EWOULDBLOCK`: nothing yet.
    Stall,
    /// `EINTR`.
    Interrupt,
    /// The upstream closed: this and every later read returns 0.
    Close,
    /// `ECONNRESET`.
    Reset,
}

/// The fake upstream.
#[derive(Debug, Default)]
pub(super) struct FakeUpstream {
    /// What the next reads return, in order; when empty, reads stall.
    pub(super) replies: VecDeque<Reply>,
    /// How many bytes each write takes, in order (`None`: `EWOULDBLOCK`); when empty,
    /// writes take everything.
    pub(super) takes: VecDeque<Option<usize>>,
    /// What was written to it.
    pub(super) written: Vec<u8>,
    /// How many reads were made.
    pub(super) reads: usize,
    closed: bool,
}

impl FakeUpstream {
    /// An upstream that answers `bytes`, `piece` bytes per read, a stall between reads,
    /// then closes if `close`.
    pub(super) fn answering(bytes: &[u8], piece: usize, close: bool) -> FakeUpstream {
        let mut f = FakeUpstream::default();
        for c in bytes.chunks(piece.max(1)) {
            f.replies.push_back(Reply::Data(c.to_vec()));
            f.replies.push_back(Reply::Stall);
        }
        if close {
            f.replies.push_back(Reply::Close);
        }
        f
    }
}

impl UpstreamIo for FakeUpstream {
    fn read(
        &mut self,
        ready: &mut bool,
        _hup: bool,
        buf: &mut Vec<u8>,
        want: usize,
    ) -> std::io::Result<usize> {
        self.reads += 1;
        if self.closed {
            return Ok(0);
        }
        match self.replies.pop_front() {
            None | Some(Reply::Stall) => {
                *ready = false;
                Err(ErrorKind::WouldBlock.into())
            }
            Some(Reply::Interrupt) => Err(ErrorKind::Interrupted.into()),
            Some(Reply::Reset) => Err(ErrorKind::ConnectionReset.into()),
            Some(Reply::Close) => {
                self.closed = true;
                Ok(0)
            }
            Some(Reply::Data(mut d)) => {
                let n = d.len().min(want);
                buf.extend_from_slice(&d[..n]);
                if n < d.len() {
                    d.drain(..n);
                    self.replies.push_front(Reply::Data(d));
                }
                Ok(n)
            }
        }
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = match self.takes.pop_front() {
            None => data.len(),
            Some(None) => return Err(ErrorKind::WouldBlock.into()),
            Some(Some(n)) => n.min(data.len()),
        };
        self.written.extend_from_slice(&data[..n]);
        Ok(n)
    }
}

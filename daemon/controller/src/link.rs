//! One request/reply exchange at a time over any async byte stream, with retransmission
//! driven by the pure [`RetrySession`] from `lethe-proto`.
use crate::error::ControllerError;
use lethe_proto::{encode_frame, Frame, FrameDecoder, Msg, RetryAction, RetrySession, MAX_FRAME};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Any bidirectional byte stream (serial port, pty, in-process pipe).
pub trait SerialIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> SerialIo for T {}

/// Framed request/reply link.
pub struct Link {
    io: Box<dyn SerialIo>,
    dec: FrameDecoder,
    session: RetrySession,
    inbox: VecDeque<Frame>,
    epoch: Instant,
}

impl Link {
    /// Wrap a stream; `timeout` per try, `max_tries` sends per request.
    pub fn new(io: Box<dyn SerialIo>, timeout: Duration, max_tries: u8) -> Self {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        Self {
            io,
            dec: FrameDecoder::new(),
            session: RetrySession::new(ms, max_tries.max(1)),
            inbox: VecDeque::new(),
            epoch: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    async fn fill(&mut self, wait: Duration) -> Result<bool, ControllerError> {
        let mut buf = [0u8; 256];
        match tokio::time::timeout(wait, self.io.read(&mut buf)).await {
            Err(_) => Ok(false),
            Ok(Ok(0)) => Err(ControllerError::Closed),
            Ok(Ok(n)) => {
                for &b in &buf[..n] {
                    // Garbled replies are dropped; the retry timer recovers.
                    if let Some(Ok(f)) = self.dec.push(b) {
                        self.inbox.push_back(f);
                    }
                }
                Ok(true)
            }
            Ok(Err(e)) => Err(e.into()),
        }
    }

    /// Send `msg` and wait for the reply with the same sequence number.
    pub async fn request(&mut self, what: &'static str, msg: Msg) -> Result<Msg, ControllerError> {
        self.inbox.clear();
        let seq = self.session.start(self.now());
        let mut buf = [0u8; MAX_FRAME];
        let n = encode_frame(&Frame { seq, msg }, &mut buf).map_err(|e| {
            ControllerError::UnexpectedReply {
                what,
                reply: format!("cannot encode request: {e:?}"),
            }
        })?;
        let wire = &buf[..n];
        self.io.write_all(wire).await?;
        self.io.flush().await?;
        let mut tries = 1u8;
        loop {
            while let Some(f) = self.inbox.pop_front() {
                if f.seq == 0 {
                    if let Msg::Nak(_) = f.msg {
                        match self.session.on_nak(self.now()) {
                            RetryAction::Retransmit => {
                                tries += 1;
                                self.io.write_all(wire).await?;
                            }
                            RetryAction::GiveUp => {
                                return Err(ControllerError::Timeout { what, tries })
                            }
                            RetryAction::Wait => {}
                        }
                    }
                } else if self.session.on_reply(f.seq) {
                    return Ok(f.msg);
                }
            }
            let left = self.session.time_left(self.now()).unwrap_or(0);
            if !self.fill(Duration::from_millis(left.max(1))).await? {
                match self.session.poll(self.now()) {
                    RetryAction::Retransmit => {
                        tries += 1;
                        self.io.write_all(wire).await?;
                        self.io.flush().await?;
                    }
                    RetryAction::GiveUp => return Err(ControllerError::Timeout { what, tries }),
                    RetryAction::Wait => {}
                }
            }
        }
    }

    /// Write raw bytes (tests: garbage, truncated frames) and collect every frame that
    /// arrives within `wait`.
    pub async fn raw_exchange(
        &mut self,
        bytes: &[u8],
        wait: Duration,
    ) -> Result<Vec<Frame>, ControllerError> {
        self.inbox.clear();
        self.io.write_all(bytes).await?;
        self.io.flush().await?;
        let end = Instant::now() + wait;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            if left.is_zero() || !self.fill(left).await? {
                break;
            }
        }
        Ok(self.inbox.drain(..).collect())
    }
}

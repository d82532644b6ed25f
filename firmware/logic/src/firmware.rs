//! The firmware proper: pins + clock + link around the pure state machines.
//!
//! Pin conventions (fail-safe): the interlock input reads high when the door is closed and the
//! e-stop input reads high while the e-stop loop is intact (not pressed), so a cut wire or an
//! unreadable pin counts as unsafe. The relay output is driven low in [`Firmware::new`], before
//! anything else runs, so a reset always drops it.
use crate::degausser::Degausser;
use crate::leds::LedBank;
use crate::watchdog::Watchdog;
use crate::{Board, Config, Inputs, FW_VERSION};
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_io::{Read, ReadReady, Write};
use lethe_proto::{
    encode_frame, Frame, FrameDecoder, FrameError, Msg, NakReason, Refusal, Status, MAX_FRAME,
    PROTOCOL_VERSION,
};

/// The controller firmware, generic over its pins and board hooks.
pub struct Firmware<R, L, D, E, B, const N: usize> {
    relay: R,
    relay_level: bool,
    leds: LedBank<L, N>,
    door: D,
    estop: E,
    board: B,
    deg: Degausser,
    wd: Watchdog,
    dec: FrameDecoder,
    /// Last answered request, replayed if the host retransmits it (so a fire runs once).
    last: Option<Frame>,
}

impl<R, L, D, E, B, const N: usize> Firmware<R, L, D, E, B, N>
where
    R: OutputPin,
    L: OutputPin,
    D: InputPin,
    E: InputPin,
    B: Board,
{
    /// Take the pins; the relay is driven low first.
    pub fn new(
        cfg: Config,
        mut relay: R,
        leds: [L; N],
        door: D,
        estop: E,
        board: B,
        seed: u32,
    ) -> Self {
        let _ = relay.set_low();
        Self {
            relay,
            relay_level: false,
            leds: LedBank::new(leds),
            door,
            estop,
            board,
            deg: Degausser::new(cfg, seed),
            wd: Watchdog::new(cfg.watchdog_ms),
            dec: FrameDecoder::new(),
            last: None,
        }
    }

    /// Current inputs; read errors count as unsafe.
    pub fn inputs(&mut self, now: u32) -> Inputs {
        Inputs {
            interlock_closed: self.door.is_high().unwrap_or(false),
            estop: !self.estop.is_high().unwrap_or(false),
            link_ok: self.wd.alive(now),
        }
    }

    /// The degausser state machine (read-only).
    pub fn degausser(&self) -> &Degausser {
        &self.deg
    }

    /// Driven relay level.
    pub fn relay_level(&self) -> bool {
        self.relay_level
    }

    /// Periodic work: overrides, timeouts, relay and LEDs. Call every few ms.
    pub fn poll(&mut self, now: u32) {
        let inp = self.inputs(now);
        self.deg.tick(now, inp);
        self.apply_relay();
        self.leds.update(now);
    }

    fn apply_relay(&mut self) {
        let want = self.deg.relay_on();
        if want == self.relay_level {
            return;
        }
        let ok = if want {
            self.relay.set_high().is_ok()
        } else {
            self.relay.set_low().is_ok()
        };
        if ok {
            self.relay_level = want;
        }
    }

    /// Status snapshot.
    pub fn status(&mut self, now: u32) -> Status {
        let inp = self.inputs(now);
        Status {
            relay: self.relay_level,
            interlock_closed: inp.interlock_closed,
            estop: inp.estop,
            fault: self.deg.fault(),
            uptime_ms: now,
            pins: u32::from(self.relay_level) | (self.leds.mask() << 1),
            degausser: self.deg.state(),
            cycles: self.deg.cycles(),
            last_cycle_ms: self.deg.last_cycle_ms(),
            link_ok: inp.link_ok,
        }
    }

    /// Answer one decoded request.
    pub fn handle(&mut self, req: Frame, now: u32) -> Frame {
        self.wd.feed(now);
        if let Some(prev) = self.last {
            if req.seq != 0 && prev.seq == req.seq && !matches!(req.msg, Msg::Hello { .. }) {
                return prev; // retransmission: answer again, do not act twice
            }
        }
        let msg = self.execute(req.msg, now);
        self.poll(now);
        let reply = Frame { seq: req.seq, msg };
        self.last = Some(reply);
        reply
    }

    fn execute(&mut self, msg: Msg, now: u32) -> Msg {
        let refused = Msg::Refused;
        match msg {
            Msg::Hello { protocol, .. } => {
                if protocol != PROTOCOL_VERSION {
                    return Msg::Nak(NakReason::ProtocolMismatch);
                }
                let (major, minor, patch) = FW_VERSION;
                Msg::Hello {
                    protocol: PROTOCOL_VERSION,
                    major,
                    minor,
                    patch,
                }
            }
            Msg::Heartbeat | Msg::GetStatus => Msg::Status(self.status(now)),
            Msg::SetLed { bay, pattern } => {
                if self.leds.set(bay, pattern) {
                    Msg::Ack
                } else {
                    refused(Refusal::NoSuchBay)
                }
            }
            Msg::Arm => {
                let inp = self.inputs(now);
                match self.deg.arm(now, inp) {
                    Ok((nonce, expires_in_ms)) => Msg::Armed {
                        nonce,
                        expires_in_ms,
                    },
                    Err(r) => refused(r),
                }
            }
            Msg::Fire { nonce } => {
                let inp = self.inputs(now);
                match self.deg.fire(now, nonce, inp) {
                    Ok((cycle, duration_ms)) => {
                        self.apply_relay();
                        Msg::Firing { cycle, duration_ms }
                    }
                    Err(r) => refused(r),
                }
            }
            Msg::Abort => {
                self.deg.abort(now);
                self.apply_relay();
                Msg::Ack
            }
            Msg::ClearFault => {
                let inp = self.inputs(now);
                match self.deg.clear_fault(inp) {
                    Ok(()) => Msg::Ack,
                    Err(r) => refused(r),
                }
            }
            Msg::SimInputs {
                interlock_open,
                estop,
            } => {
                if self.board.sim_inputs(interlock_open, estop) {
                    self.poll(now);
                    Msg::Ack
                } else {
                    refused(Refusal::Unsupported)
                }
            }
            Msg::Ack
            | Msg::Nak(_)
            | Msg::Refused(_)
            | Msg::Armed { .. }
            | Msg::Firing { .. }
            | Msg::Status(_) => refused(Refusal::Unexpected),
        }
    }

    /// Feed one received byte; writes a reply (or a NAK) when it completes a frame.
    pub fn on_byte<W: Write>(&mut self, byte: u8, now: u32, out: &mut W) {
        let reply = match self.dec.push(byte) {
            None => return,
            Some(Ok(req)) => self.handle(req, now),
            Some(Err(e)) => {
                let reason = match e {
                    FrameError::Crc => NakReason::Crc,
                    FrameError::TooLong => NakReason::Overflow,
                    FrameError::TooShort | FrameError::Cobs | FrameError::Postcard => {
                        NakReason::Malformed
                    }
                };
                Frame {
                    seq: 0,
                    msg: Msg::Nak(reason),
                }
            }
        };
        let mut buf = [0u8; MAX_FRAME];
        if let Ok(n) = encode_frame(&reply, &mut buf) {
            let _ = out.write_all(&buf[..n]);
            let _ = out.flush();
        }
    }

    /// Drain every byte the link has ready, then run [`Firmware::poll`].
    pub fn service<IO: Read + ReadReady + Write>(&mut self, io: &mut IO, now: u32) {
        let mut b = [0u8; 1];
        while let Ok(true) = io.read_ready() {
            match io.read(&mut b) {
                Ok(1) => self.on_byte(b[0], now, io),
                _ => break,
            }
        }
        self.poll(now);
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

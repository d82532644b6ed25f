//! The firmware driver: pins, board hooks and the serial link around the pure [`Machine`].
//!
//! Pin conventions (fail-safe): the interlock input reads high when the door is closed, the e-stop
//! input reads high while the e-stop loop is intact, and the feedback input reads high when the
//! coil is off (the relay's force-guided normally-closed auxiliary contact is closed). A cut wire
//! or a read error therefore counts as door open, e-stop pressed and coil energized, so a broken
//! input can only refuse, never permit. The relay output is driven low in [`Firmware::new`] before
//! anything else, and on every poll the wanted level is written again and read back.
//!
//! Relay sequencing: the hardware pulse limit is started before the relay goes high and stopped
//! after it goes low, so the relay is never high without the independent timer running.
//! The hardware watchdog is kicked only at the end of a poll whose read-back did not find the relay
//! high against the command; a stuck-high output therefore ends in a watchdog reset, which
//! releases the pin to its pull-down.
use crate::leds::LedBank;
use crate::machine::{Machine, Sense};
use crate::{Board, BuildKind, Config, ResetCause};
use embedded_hal::digital::{InputPin, StatefulOutputPin};
use embedded_io::{Read, ReadReady, Write};
use lethe_proto::{
    encode_frame, FaultCode, Frame, FrameDecoder, FrameError, Msg, NakReason, MAX_FRAME,
};

/// Received bytes handled per [`Firmware::service`] pass, so a flood never delays the poll.
pub const RX_BUDGET: usize = 2 * MAX_FRAME;

/// The input pins.
#[derive(Clone)]
pub struct InputPins<I> {
    /// Door interlock, high = closed.
    pub door: I,
    /// E-stop loop, high = intact (not pressed).
    pub estop: I,
    /// Feedback: force-guided normally-closed auxiliary contact (or a coil-current sense wired the
    /// same way), high = coil off.
    pub contact: I,
    /// Local reset button, high = pressed.
    pub reset: I,
}

/// The controller firmware, generic over its pins and board hooks.
#[derive(Clone)]
pub struct Firmware<R, I, L, B, const N: usize> {
    m: Machine<N>,
    relay: R,
    driven: bool,
    inputs: InputPins<I>,
    leds: LedBank<L, N>,
    board: B,
    dec: FrameDecoder,
}

impl<R, I, L, B, const N: usize> Firmware<R, I, L, B, N>
where
    R: StatefulOutputPin,
    I: InputPin,
    L: embedded_hal::digital::OutputPin,
    B: Board,
{
    /// Take the pins; the relay is driven low first.
    pub fn new(
        cfg: Config,
        mut relay: R,
        inputs: InputPins<I>,
        leds: [L; N],
        mut board: B,
        reset_cause: ResetCause,
        seed: u32,
    ) -> Self {
        let _ = relay.set_low();
        board.stop_pulse_limit();
        let build = board.build();
        Self {
            m: Machine::new(cfg, build, reset_cause, seed),
            relay,
            driven: false,
            inputs,
            leds: LedBank::new(leds),
            board,
            dec: FrameDecoder::new(),
        }
    }

    /// The decision core (read-only).
    pub fn machine(&self) -> &Machine<N> {
        &self.m
    }

    /// The board hooks.
    pub fn board_mut(&mut self) -> &mut B {
        &mut self.board
    }

    /// Level last written to the relay.
    pub fn relay_driven(&self) -> bool {
        self.driven
    }

    fn sense(&mut self) -> Sense {
        Sense {
            door_closed: self.inputs.door.is_high().unwrap_or(false),
            estop_ok: self.inputs.estop.is_high().unwrap_or(false),
            energized: !self.inputs.contact.is_high().unwrap_or(false),
            reset_pressed: self.inputs.reset.is_high().unwrap_or(false),
            // An unreadable output counts as high: the dangerous reading.
            relay_readback: self.relay.is_set_high().unwrap_or(true),
            leds: self.leds.mask(),
        }
    }

    /// Write the wanted relay level (again), read it back, and act on a disagreement.
    /// Returns false when the relay reads high against a low command.
    fn drive(&mut self, want: bool) -> bool {
        if want {
            if !self.driven {
                let limit = self.m.degausser().config().pulse_limit_ms();
                self.board.start_pulse_limit(limit);
            }
            let _ = self.relay.set_high();
        } else {
            let _ = self.relay.set_low();
            if self.driven {
                self.board.stop_pulse_limit();
            }
        }
        self.driven = want;
        let high = self.relay.is_set_high().unwrap_or(true);
        if high == want {
            return true;
        }
        // Low against a high command right after the pulse-limit interrupt cut the relay is that
        // interrupt's doing, not a broken output.
        let code = if want && !high && self.board.pulse_limit_tripped() {
            FaultCode::PulseLimit
        } else {
            FaultCode::OutputMismatch
        };
        self.m.detected(code);
        let _ = self.relay.set_low();
        self.driven = false;
        self.board.stop_pulse_limit();
        // Reading low against a high command is the safe side: report it, keep running.
        !high
    }

    /// Periodic work: read the inputs, let the machine decide, drive and check the relay, update
    /// the LEDs, and kick the hardware watchdog if the poll was healthy. Call every few ms.
    pub fn poll(&mut self, now: u32) {
        if self.board.pulse_limit_tripped() {
            self.m.detected(FaultCode::PulseLimit);
        }
        let s = self.sense();
        let want = self.m.poll(now, s);
        let healthy = self.drive(want);
        self.leds.update(now, self.m.led_patterns());
        if healthy {
            self.board.kick_watchdog();
        }
    }

    /// Answer one decoded request: the relay is driven before the reply is returned.
    pub fn handle(&mut self, req: Frame, now: u32) -> Frame {
        let entropy = self.board.entropy();
        self.m.stir(entropy);
        let s = self.sense();
        let (reply, sim) = self.m.request(req, now, s);
        if let Some(sim) = sim {
            if self.board.build() == BuildKind::Simulation {
                self.board.simulate(sim);
            }
        }
        self.poll(now);
        reply
    }

    /// Feed one received byte; writes a reply (or a NAK) when it completes a frame. A write that
    /// fails (the board's transmit timed out) drops the reply; the host retransmits.
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
            if out.write_all(&buf[..n]).is_ok() {
                let _ = out.flush();
            }
        }
    }

    /// Handle at most [`RX_BUDGET`] received bytes, then [`Firmware::poll`].
    pub fn service<IO: Read + ReadReady + Write>(&mut self, io: &mut IO, now: u32) {
        let mut b = [0u8; 1];
        for _ in 0..RX_BUDGET {
            match io.read_ready() {
                Ok(true) => {}
                _ => break,
            }
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

//! Every transition of the degausser state machine, with an injected clock.
use super::*;

const CFG: Config = Config {
    arm_expiry_ms: 5_000,
    fire_ms: 1_500,
    cooldown_ms: 1_000,
    watchdog_ms: 500,
};
const SAFE: Inputs = Inputs::SAFE;
const DOOR_OPEN: Inputs = Inputs {
    interlock_closed: false,
    estop: false,
    link_ok: true,
};
const ESTOP: Inputs = Inputs {
    interlock_closed: true,
    estop: true,
    link_ok: true,
};
const NO_LINK: Inputs = Inputs {
    interlock_closed: true,
    estop: false,
    link_ok: false,
};

fn armed(now: u32) -> (Degausser, u32) {
    let mut d = Degausser::new(CFG, 42);
    let (nonce, exp) = d.arm(now, SAFE).unwrap();
    assert_eq!(exp, 5_000);
    assert_eq!(d.state(), DegausserState::Armed);
    assert!(!d.relay_on(), "arming never energizes");
    (d, nonce)
}

fn firing(now: u32) -> Degausser {
    let (mut d, nonce) = armed(now);
    assert_eq!(d.fire(now + 10, nonce, SAFE), Ok((1, 1_500)));
    assert_eq!(d.state(), DegausserState::Firing);
    assert!(d.relay_on());
    d
}

#[test]
fn reset_state_is_idle_and_off() {
    let d = Degausser::new(CFG, 0);
    assert_eq!(d.state(), DegausserState::Idle);
    assert!(!d.relay_on());
    assert_eq!((d.cycles(), d.fault()), (0, None));
}

#[test]
fn idle_to_armed_to_firing_to_cooldown_to_idle() {
    let mut d = firing(100);
    d.tick(100 + 10 + 1_499, SAFE);
    assert!(d.relay_on(), "still inside the cycle");
    d.tick(100 + 10 + 1_500, SAFE);
    assert_eq!(d.state(), DegausserState::Cooldown);
    assert!(!d.relay_on());
    assert_eq!((d.cycles(), d.last_cycle_ms()), (1, 1_500));
    assert_eq!(
        d.arm(1_700, SAFE),
        Err(Refusal::Busy),
        "no arm while cooling down"
    );
    d.tick(1_610 + 999, SAFE);
    assert_eq!(d.state(), DegausserState::Cooldown);
    d.tick(1_610 + 1_000, SAFE);
    assert_eq!(d.state(), DegausserState::Idle);
    let (n, _) = d.arm(3_000, SAFE).unwrap();
    assert_eq!(
        d.fire(3_001, n, SAFE),
        Ok((2, 1_500)),
        "cycle numbers count up"
    );
}

#[test]
fn firing_is_bounded_even_with_late_tick() {
    let mut d = firing(0);
    d.tick(60_000, SAFE);
    assert!(!d.relay_on());
    assert_eq!(d.last_cycle_ms(), 59_990, "reports real on-time");
}

#[test]
fn fire_without_arm_refused() {
    let mut d = Degausser::new(CFG, 1);
    assert_eq!(d.fire(0, 0, SAFE), Err(Refusal::NotArmed));
    assert_eq!(d.fire(0, 12345, SAFE), Err(Refusal::NotArmed));
    assert!(!d.relay_on());
}

#[test]
fn fire_with_wrong_nonce_refused_and_stays_armed() {
    let (mut d, n) = armed(0);
    assert_eq!(d.fire(1, n.wrapping_add(1), SAFE), Err(Refusal::BadNonce));
    assert_eq!(d.state(), DegausserState::Armed);
    assert!(d.fire(2, n, SAFE).is_ok());
}

#[test]
fn armed_expires_to_idle_and_late_fire_says_expired() {
    let (mut d, n) = armed(1_000);
    d.tick(5_999, SAFE);
    assert_eq!(d.state(), DegausserState::Armed);
    d.tick(6_000, SAFE);
    assert_eq!(d.state(), DegausserState::Idle);
    assert_eq!(d.fire(6_001, n, SAFE), Err(Refusal::ArmExpired));
    assert!(!d.relay_on());
    // Expiry detected inside fire() itself (no tick in between).
    let (mut d, n) = armed(0);
    assert_eq!(d.fire(5_000, n, SAFE), Err(Refusal::ArmExpired));
}

#[test]
fn rearm_gives_new_nonce_and_old_one_is_dead() {
    let (mut d, n1) = armed(0);
    let (n2, _) = d.arm(10, SAFE).unwrap();
    assert_ne!(n1, n2);
    assert_eq!(d.fire(11, n1, SAFE), Err(Refusal::BadNonce));
    assert!(d.fire(12, n2, SAFE).is_ok());
}

#[test]
fn abort_disarms_or_latches_when_firing() {
    let (mut d, n) = armed(0);
    d.abort(1);
    assert_eq!(d.state(), DegausserState::Idle);
    assert_eq!(d.fire(2, n, SAFE), Err(Refusal::NotArmed));
    let mut d = firing(0);
    d.abort(100);
    assert!(!d.relay_on());
    assert_eq!(d.fault(), Some(FaultCode::Aborted));
    assert_eq!(d.cycles(), 0, "an aborted cycle is not a completed cycle");
    let mut d = Degausser::new(CFG, 3);
    d.abort(0);
    assert_eq!(d.state(), DegausserState::Idle);
}

#[test]
fn interlock_open_refuses_arm_and_fire() {
    let mut d = Degausser::new(CFG, 1);
    assert_eq!(d.arm(0, DOOR_OPEN), Err(Refusal::InterlockOpen));
    let (mut d, n) = armed(0);
    assert_eq!(d.fire(1, n, DOOR_OPEN), Err(Refusal::InterlockOpen));
    assert_eq!(d.state(), DegausserState::Idle, "door opening disarms");
    assert!(!d.relay_on());
}

#[test]
fn interlock_open_while_armed_disarms() {
    let (mut d, n) = armed(0);
    d.tick(5, DOOR_OPEN);
    assert_eq!(d.state(), DegausserState::Idle);
    assert_eq!(d.fault(), None);
    assert_eq!(d.fire(6, n, SAFE), Err(Refusal::NotArmed));
}

#[test]
fn interlock_open_while_firing_latches_fault() {
    let mut d = firing(0);
    d.tick(20, DOOR_OPEN);
    assert!(!d.relay_on());
    assert_eq!(d.state(), DegausserState::Fault);
    assert_eq!(d.fault(), Some(FaultCode::InterlockOpened));
    d.tick(30, SAFE);
    assert_eq!(
        d.fault(),
        Some(FaultCode::InterlockOpened),
        "latched after the door closes"
    );
    assert_eq!(d.arm(40, SAFE), Err(Refusal::FaultLatched));
}

#[test]
fn estop_overrides_every_state() {
    for setup in 0..4 {
        let mut d = match setup {
            0 => Degausser::new(CFG, 5),
            1 => armed(0).0,
            2 => firing(0),
            _ => {
                let mut d = firing(0);
                d.tick(1_510, SAFE);
                assert_eq!(d.state(), DegausserState::Cooldown);
                d
            }
        };
        d.tick(1_600, ESTOP);
        assert!(!d.relay_on());
        assert_eq!(d.fault(), Some(FaultCode::EStop), "setup {setup}");
        assert_eq!(d.arm(1_601, ESTOP), Err(Refusal::FaultLatched));
    }
    let mut d = Degausser::new(CFG, 5);
    assert_eq!(
        d.arm(0, ESTOP),
        Err(Refusal::FaultLatched),
        "arm sees e-stop through tick"
    );
    let (mut d, n) = armed(0);
    assert_eq!(d.fire(1, n, ESTOP), Err(Refusal::FaultLatched));
    assert!(!d.relay_on());
}

#[test]
fn link_loss_while_armed_disarms_and_while_firing_latches() {
    let (mut d, _) = armed(0);
    d.tick(600, NO_LINK);
    assert_eq!(d.state(), DegausserState::Idle);
    assert_eq!(d.fault(), None);
    let mut d = firing(0);
    d.tick(600, NO_LINK);
    assert!(!d.relay_on());
    assert_eq!(d.fault(), Some(FaultCode::LinkLost));
}

#[test]
fn link_loss_during_cooldown_is_harmless() {
    let mut d = firing(0);
    d.tick(1_510, SAFE);
    d.tick(1_600, NO_LINK);
    assert_eq!(d.state(), DegausserState::Cooldown);
    assert_eq!(d.fault(), None);
}

#[test]
fn clear_fault_needs_safe_inputs() {
    let mut d = firing(0);
    d.tick(20, DOOR_OPEN);
    assert_eq!(d.clear_fault(DOOR_OPEN), Err(Refusal::InterlockOpen));
    assert_eq!(d.clear_fault(ESTOP), Err(Refusal::EStop));
    assert_eq!(d.clear_fault(SAFE), Ok(()));
    assert_eq!(d.state(), DegausserState::Idle);
    assert!(d.arm(30, SAFE).is_ok());
}

#[test]
fn first_fault_wins() {
    let mut d = firing(0);
    d.tick(20, DOOR_OPEN);
    d.tick(30, ESTOP);
    assert_eq!(d.fault(), Some(FaultCode::InterlockOpened));
}

#[test]
fn clock_wraparound() {
    let start = u32::MAX - 100;
    let mut d = firing(start);
    d.tick(start.wrapping_add(10 + 1_499), SAFE);
    assert!(d.relay_on());
    d.tick(start.wrapping_add(10 + 1_500), SAFE);
    assert_eq!(d.state(), DegausserState::Cooldown);
}

//! One client-side rate limiter shared by every portal call.
//!
//! IAM Identity Center throttles collectively (about 20 requests a second) and users of
//! other tools report accounts failing by the hundred even with 15 retries each: retries
//! alone only move the storm. So the whole client slows down together, as the AWS SDKs'
//! adaptive retry mode does:
//!
//! - it starts at a safe rate and, until the first 429, doubles it every 50 ms (slow
//!   start), so an unthrottled portal is reached at full speed within a second;
//! - on a 429 it drops to 90% of the rate the portal actually served over the last
//!   second, or to half its rate if that is more (at most once per 200 ms, since the
//!   calls already in flight answer 429 too), which lands just under the portal's limit
//!   in one or a few steps;
//! - then it adds about 2 requests a second for every second without a 429 (additive
//!   increase), probing back up.
//!
//! The rate only grows while it is what holds the client back (a call had to wait), so
//! a quiet spell does not build up a rate that would flood the portal later.
//!
//! At its end a run reports what the portal sustained ([`RateLimiter::sustained`]), and
//! the next run starts there (`cache/portal_rate.rs`): in slow start when the portal never
//! throttled it, else in additive increase, just under the rate that drew the 429.

use std::sync::Mutex;
use std::time::Duration;

// tokio's clock, not std's, so tests can run the limiter in paused, simulated time.
use tokio::time::Instant;

/// Never slower than this, so a run always finishes.
const MIN_RATE: f64 = 1.0;
/// Slow start doubles the rate this often.
const DOUBLING: Duration = Duration::from_millis(50);
/// Calls already in flight answer 429 too: one decrease per this long.
const DECREASE_INTERVAL: Duration = Duration::from_millis(200);
/// Requests a second added per second without a throttle.
const RECOVERY_PER_SECOND: f64 = 2.0;

#[derive(Debug)]
struct State {
    /// Requests a second.
    rate: f64,
    /// True until the first 429.
    slow_start: bool,
    /// A call had to wait for its turn since the rate last grew: only then is the
    /// rate what holds the client back, and worth raising.
    limited: bool,
    /// Calls that may be sent now: a token bucket refilled at `rate`, holding at most
    /// 50 ms worth (at least one), so timer granularity does not cap a high rate.
    tokens: f64,
    last_refill: Instant,
    last_growth: Instant,
    last_decrease: Option<Instant>,
    /// Calls sent since the rate last grew.
    sent_since_growth: u32,
    /// Calls the portal served in the current one-second window, and in the last one.
    window_start: Instant,
    served: u32,
    last_served: u32,
    /// The rate the last 429 brought it down to: just under what the portal allowed.
    throttled_to: Option<f64>,
    /// Whether the portal has served a call at all: until then the rate is no evidence.
    served_any: bool,
}

/// What the portal sustained over a run, for the next one to start at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sustained {
    /// Requests a second.
    pub rate: f64,
    /// The rate came from a 429 (just under the rate that drew it), not from a run
    /// the portal never throttled: the next run must not double it blindly.
    pub throttled: bool,
}

#[derive(Debug)]
pub struct RateLimiter(Mutex<State>);

impl RateLimiter {
    #[cfg(test)]
    pub fn new(initial_rate: f64) -> Self {
        Self::starting(Sustained { rate: initial_rate, throttled: false })
    }

    /// A limiter that starts where a run left off: probing up by doubling if the portal
    /// never throttled that run, else by the additive increase that follows a 429.
    pub fn starting(at: Sustained) -> Self {
        let now = Instant::now();
        RateLimiter(Mutex::new(State {
            rate: at.rate.max(MIN_RATE),
            slow_start: !at.throttled,
            limited: false,
            tokens: 1.0,
            last_refill: now,
            last_growth: now,
            last_decrease: None,
            sent_since_growth: 0,
            window_start: now,
            served: 0,
            last_served: 0,
            throttled_to: None,
            served_any: false,
        }))
    }

    /// What the portal sustained: the rate the last 429 brought the limiter down to,
    /// or, if nothing throttled, its rate now (it grew only while in use). `None` when
    /// the portal neither served nor throttled a call (a rejected login, say): the rate
    /// is then only where the run started.
    pub fn sustained(&self) -> Option<Sustained> {
        let state = self.lock();
        match state.throttled_to {
            Some(rate) => Some(Sustained { rate, throttled: true }),
            None => state.served_any.then_some(Sustained { rate: state.rate, throttled: false }),
        }
    }

    /// Waits for this call's turn. A waiter does not book a slot in the future: it
    /// sleeps until a token is due at the current rate and looks again, so a rate that
    /// rises meanwhile (slow start) speeds up the calls already waiting too.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut state = self.lock();
                let now = Instant::now();
                state.grow(now);
                state.refill(now);
                if state.tokens >= 1.0 {
                    state.tokens -= 1.0;
                    state.sent_since_growth += 1;
                    return;
                }
                state.limited = true;
                // At least the timer's granularity: a shorter sleep returns at once.
                Duration::from_secs_f64((1.0 - state.tokens) / state.rate).max(Duration::from_millis(1))
            };
            tokio::time::sleep(wait).await;
        }
    }

    pub fn on_success(&self) {
        let mut state = self.lock();
        state.roll_window(Instant::now());
        state.served += 1;
        state.served_any = true;
    }

    /// Slows the whole client down: to 90% of what the portal served over the last
    /// second, but never below half the current rate in one step (a client that sent
    /// little when a busy portal answered 429 has served little, not hit a limit).
    pub fn on_throttle(&self) {
        let mut state = self.lock();
        let now = Instant::now();
        if state.last_decrease.is_some_and(|at| now.duration_since(at) < DECREASE_INTERVAL) {
            return;
        }
        state.roll_window(now);
        let served = f64::from(state.last_served.max(state.served));
        let before = state.rate;
        state.rate = (before.min(served) * 0.9).max(before * 0.5).max(MIN_RATE);
        state.slow_start = false;
        state.limited = false;
        state.sent_since_growth = 0;
        state.last_decrease = Some(now);
        state.last_growth = now;
        state.throttled_to = Some(state.rate);
        tracing::info!(from = before, to = state.rate, "portal throttled: slowing down");
    }

    /// The current rate, requests a second.
    #[cfg(test)]
    fn rate(&self) -> f64 {
        self.lock().rate
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().expect("the limiter's lock is never poisoned")
    }
}

impl State {
    /// Raises the rate when it was the limit: doubling in slow start, else additively.
    fn grow(&mut self, now: Instant) {
        let elapsed = now.duration_since(self.last_growth);
        let period = if self.slow_start { DOUBLING } else { Duration::from_millis(100) };
        if elapsed < period {
            return;
        }
        // Calls arriving together make some wait at any rate, so "limited" alone would
        // let the rate run away: it also has to be in use, at least half of it.
        let in_use = f64::from(self.sent_since_growth) / elapsed.as_secs_f64() * 2.0 >= self.rate;
        if self.limited && in_use {
            self.rate =
                if self.slow_start { self.rate * 2.0 } else { self.rate + RECOVERY_PER_SECOND * elapsed.as_secs_f64() };
        }
        self.limited = false;
        self.sent_since_growth = 0;
        self.last_growth = now;
    }

    fn refill(&mut self, now: Instant) {
        let burst = (self.rate * 0.05).max(1.0);
        let elapsed = now.duration_since(self.last_refill).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(burst);
        self.last_refill = now;
    }

    fn roll_window(&mut self, now: Instant) {
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.last_served = self.served;
            self.served = 0;
            self.window_start = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A portal that serves `limit` requests a second and throttles the rest, driven by
    /// the limiter in simulated time: the rate must settle near the limit.
    #[tokio::test(start_paused = true)]
    async fn converges_under_a_throttle_storm_without_collapsing() {
        let limiter = RateLimiter::new(20.0);
        let limit = 50.0;
        let start = Instant::now();
        let mut served_in_window = 0.0;
        let mut window = 0;
        let (mut served, mut throttled) = (0u32, 0u32);
        while start.elapsed() < Duration::from_secs(30) {
            limiter.acquire().await;
            let second = start.elapsed().as_secs();
            if second != window {
                window = second;
                served_in_window = 0.0;
            }
            if served_in_window < limit {
                served_in_window += 1.0;
                served += 1;
                limiter.on_success();
            } else {
                throttled += 1;
                limiter.on_throttle();
            }
        }
        let rate = limiter.rate();
        assert!(rate > limit * 0.5 && rate < limit * 1.5, "rate {rate} far from the limit {limit}");
        assert!(f64::from(served) > 30.0 * limit * 0.8, "served {served} in 30 s at a limit of {limit}");
        assert!(throttled < served / 5, "{throttled} throttles for {served} served");
    }

    #[tokio::test(start_paused = true)]
    #[expect(clippy::float_cmp, reason = "halving 20 is exact")]
    async fn a_throttle_at_low_demand_does_not_collapse_the_rate() {
        let limiter = RateLimiter::new(20.0);
        limiter.acquire().await;
        limiter.on_throttle();
        assert_eq!(limiter.rate(), 10.0);
    }

    #[tokio::test(start_paused = true)]
    #[expect(clippy::float_cmp, reason = "an unchanged rate is exactly the initial one")]
    async fn an_idle_client_does_not_build_up_rate() {
        let limiter = RateLimiter::new(20.0);
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            limiter.acquire().await;
            limiter.on_success();
        }
        assert_eq!(limiter.rate(), 20.0);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_start_reaches_a_high_rate_quickly_when_nothing_throttles() {
        let limiter = RateLimiter::new(20.0);
        let start = Instant::now();
        let mut calls = 0;
        while start.elapsed() < Duration::from_secs(1) {
            limiter.acquire().await;
            limiter.on_success();
            calls += 1;
        }
        assert!(limiter.rate() > 1000.0, "rate {}", limiter.rate());
        assert!(calls > 300, "{calls} calls in the first second");
    }

    #[tokio::test(start_paused = true)]
    async fn it_reports_its_rate_or_the_one_the_last_throttle_set() {
        let limiter = RateLimiter::new(20.0);
        assert_eq!(limiter.sustained(), None, "nothing served yet");
        for _ in 0..200 {
            limiter.acquire().await;
            limiter.on_success();
        }
        let unthrottled = limiter.sustained().unwrap();
        assert!(!unthrottled.throttled && unthrottled.rate > 20.0, "{unthrottled:?}");
        limiter.on_throttle();
        let after = limiter.sustained().unwrap();
        assert!(after.throttled && after.rate < unthrottled.rate, "{after:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_known_from_a_throttle_is_not_doubled_but_probed_additively() {
        let limiter = RateLimiter::starting(Sustained { rate: 50.0, throttled: true });
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(1) {
            limiter.acquire().await;
            limiter.on_success();
        }
        let rate = limiter.rate();
        assert!(rate > 50.0 && rate < 55.0, "additive increase of about 2 a second: {rate}");
    }
}

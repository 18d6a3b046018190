//! One client-side rate limiter shared by every portal call.
//!
//! IAM Identity Center throttles collectively (about 20 requests a second) and users of
//! other tools report accounts failing by the hundred even with 15 retries each: retries
//! alone only move the storm. So the whole client slows down together, as the AWS SDKs'
//! adaptive retry mode does:
//!
//! - it starts at a safe rate and, until the first 429, doubles it every 100 ms (slow
//!   start), so an unthrottled portal is reached at full speed within a second;
//! - on a 429 it drops to 90% of the rate the portal actually served over the last
//!   second (at most once per half second, since the calls already in flight answer 429
//!   too), which lands just under the portal's limit in one step;
//! - then it adds about 2 requests a second for every second without a 429 (additive
//!   increase), probing back up.

use std::sync::Mutex;
use std::time::Duration;

// tokio's clock, not std's, so tests can run the limiter in paused, simulated time.
use tokio::time::Instant;

/// Never slower than this, so a run always finishes.
const MIN_RATE: f64 = 1.0;
/// Slow start doubles the rate this often.
const DOUBLING: Duration = Duration::from_millis(100);
/// Calls already in flight answer 429 too: one decrease per this long.
const DECREASE_INTERVAL: Duration = Duration::from_millis(500);
/// Requests a second added per second without a throttle.
const RECOVERY_PER_SECOND: f64 = 2.0;

#[derive(Debug)]
struct State {
    /// Requests a second.
    rate: f64,
    /// True until the first 429.
    slow_start: bool,
    /// When the next call may be sent.
    next_send: Instant,
    /// When the rate last grew, and last dropped.
    last_growth: Instant,
    last_decrease: Instant,
    /// Successes in the current one-second window, and in the last full one.
    window_start: Instant,
    window_successes: u32,
    last_window_successes: u32,
}

#[derive(Debug)]
pub struct RateLimiter(Mutex<State>);

impl RateLimiter {
    pub fn new(initial_rate: f64) -> Self {
        let now = Instant::now();
        RateLimiter(Mutex::new(State {
            rate: initial_rate.max(MIN_RATE),
            slow_start: true,
            next_send: now,
            last_growth: now,
            last_decrease: now,
            window_start: now,
            window_successes: 0,
            last_window_successes: 0,
        }))
    }

    /// Waits for this call's turn.
    pub async fn acquire(&self) {
        let wait = {
            let mut state = self.0.lock().expect("the limiter's lock is never poisoned");
            let now = Instant::now();
            state.grow(now);
            let send_at = state.next_send.max(now);
            state.next_send = send_at + Duration::from_secs_f64(1.0 / state.rate);
            send_at - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    pub fn on_success(&self) {
        let mut state = self.0.lock().expect("the limiter's lock is never poisoned");
        state.count_success(Instant::now());
    }

    pub fn on_throttle(&self) {
        let mut state = self.0.lock().expect("the limiter's lock is never poisoned");
        let now = Instant::now();
        if !state.slow_start && now.duration_since(state.last_decrease) < DECREASE_INTERVAL {
            return;
        }
        state.count_success(now);
        let served = f64::from(state.last_window_successes.max(state.window_successes));
        let before = state.rate;
        state.rate = (state.rate.min(served) * 0.9).max(MIN_RATE);
        state.slow_start = false;
        state.last_decrease = now;
        state.last_growth = now;
        tracing::info!(from = before, to = state.rate, "portal throttled: slowing down");
    }

    /// The current rate, requests a second.
    pub fn rate(&self) -> f64 {
        self.0.lock().expect("the limiter's lock is never poisoned").rate
    }
}

impl State {
    fn grow(&mut self, now: Instant) {
        let elapsed = now.duration_since(self.last_growth);
        if self.slow_start {
            let doublings = (elapsed.as_secs_f64() / DOUBLING.as_secs_f64()).floor();
            if doublings >= 1.0 {
                self.rate = (self.rate * 2f64.powf(doublings)).min(1e6);
                self.last_growth = now;
            }
        } else if elapsed >= Duration::from_millis(100) {
            self.rate += RECOVERY_PER_SECOND * elapsed.as_secs_f64();
            self.last_growth = now;
        }
    }

    fn count_success(&mut self, now: Instant) {
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.last_window_successes = self.window_successes;
            self.window_successes = 0;
            self.window_start = now;
        }
        self.window_successes += 1;
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
}

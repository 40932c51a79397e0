//! A clock tests move by hand.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use latchkey_domain::ports::Clock;

/// A clock tests move by hand.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock at the current time.
    #[must_use]
    pub fn new() -> Self {
        #[expect(
            clippy::disallowed_methods,
            reason = "a manual clock starts at the real time"
        )]
        let now = Utc::now();
        Self(Mutex::new(now))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().expect("clock lock");
        *now += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}

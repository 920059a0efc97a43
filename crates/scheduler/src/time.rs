//! Time as the scheduler sees it: a [`Timestamp`] on a monotonic timeline and an injectable
//! [`Clock`].
//!
//! Metrics carry the [`Timestamp`] of their last successful extraction; the scheduler compares it
//! with [`Clock::now`] to decide whether an endpoint's numbers are stale. Production code uses
//! [`SystemClock`]; simulators and tests drive a [`ManualClock`] so that the same inputs give the
//! same decisions.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A point on the scheduler's monotonic timeline, in nanoseconds since the clock's epoch.
///
/// The epoch is arbitrary (process start for [`SystemClock`], zero for [`ManualClock`]); only
/// differences between timestamps of the same clock are meaningful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The clock's epoch.
    pub const ZERO: Timestamp = Timestamp(0);

    /// A timestamp `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Timestamp(nanos)
    }

    /// A timestamp `d` after the epoch (saturating at about 584 years).
    pub fn from_duration(d: Duration) -> Self {
        Timestamp(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// A timestamp `secs` seconds after the epoch; negative or NaN values give the epoch.
    pub fn from_secs_f64(secs: f64) -> Self {
        if secs.is_nan() || secs <= 0.0 {
            Timestamp::ZERO
        } else {
            Timestamp::from_duration(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
        }
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Seconds since the epoch.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// The time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub const fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating.
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
}

/// A source of the current time.
///
/// Implementations must be monotonic: `now()` never goes backwards.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

/// The wall clock: [`Instant`] measured from a process-wide epoch fixed at first use, so that
/// every `SystemClock` (in the scraper and in the scheduler) shares one timeline.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    fn epoch() -> Instant {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        *EPOCH.get_or_init(Instant::now)
    }

    /// The timestamp of an [`Instant`] on this clock's timeline (the epoch if `instant` is
    /// earlier than it).
    pub fn timestamp_of(instant: Instant) -> Timestamp {
        Timestamp::from_duration(instant.saturating_duration_since(Self::epoch()))
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Self::timestamp_of(Instant::now())
    }
}

/// A clock that moves only when told to: for simulators and tests.
///
/// ```
/// use pointsman::time::{Clock, ManualClock, Timestamp};
/// use std::time::Duration;
///
/// let clock = ManualClock::new(Timestamp::ZERO);
/// clock.advance(Duration::from_millis(50));
/// assert_eq!(clock.now().as_nanos(), 50_000_000);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            nanos: AtomicU64::new(start.as_nanos()),
        }
    }

    /// Sets the time. A time earlier than the current one is ignored, keeping the clock monotonic.
    pub fn set(&self, t: Timestamp) {
        self.nanos.fetch_max(t.as_nanos(), Ordering::AcqRel);
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(d))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.nanos.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_is_monotonic() {
        let c = ManualClock::new(Timestamp::from_nanos(100));
        c.set(Timestamp::from_nanos(50));
        assert_eq!(c.now(), Timestamp::from_nanos(100));
        c.set(Timestamp::from_nanos(150));
        assert_eq!(c.now(), Timestamp::from_nanos(150));
    }

    #[test]
    fn system_clock_advances() {
        let a = SystemClock.now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(SystemClock.now().saturating_since(a) >= Duration::from_millis(2));
    }

    #[test]
    fn secs_conversions() {
        assert_eq!(Timestamp::from_secs_f64(-1.0), Timestamp::ZERO);
        assert_eq!(Timestamp::from_secs_f64(f64::NAN), Timestamp::ZERO);
        assert_eq!(Timestamp::from_secs_f64(1.5).as_nanos(), 1_500_000_000);
    }
}

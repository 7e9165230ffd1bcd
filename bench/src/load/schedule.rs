//! When each record is meant to be sent, and when a sender stops.
//!
//! With `--rate R` the load is *open-loop*: record `i` (counted over all senders) has the
//! intended send time `i / R` seconds after the start, on a fixed grid that does not move
//! when a sender falls behind. A sender that stalls (the client's queue is full, the
//! thread was descheduled, the broker stopped acknowledging) sends the records it owes as
//! soon as it can, and each record's latency is measured from its *intended* time, so the
//! stall shows up in every record that waited for it, not in one slow sample. This is
//! what avoids coordinated omission: a closed-loop tool that measures from the actual send
//! time would report one slow record and then pretend the backlog never happened.
//!
//! Without a rate the load is closed-loop (as fast as the client accepts records) and the
//! intended time of a record is the moment it is handed to the client.
//!
//! Every time here is a [`Duration`] since the run's start, so a test can drive a
//! [`Pacer`] with a simulated clock.

use std::time::Duration;

/// A fixed-rate grid of intended send times shared by all senders of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Nanoseconds between two consecutive records of the whole run.
    interval_ns: f64,
}

impl Schedule {
    /// A grid of `records_per_sec` records per second in total.
    ///
    /// # Errors
    /// The rate is not a positive finite number.
    pub fn new(records_per_sec: f64) -> anyhow::Result<Self> {
        anyhow::ensure!(
            records_per_sec.is_finite() && records_per_sec > 0.0,
            "the rate must be a positive number of records per second, got {records_per_sec}"
        );
        Ok(Self {
            interval_ns: 1e9 / records_per_sec,
        })
    }

    /// Intended send time of record `index` (over all senders), since the start.
    pub fn intended(&self, index: u64) -> Duration {
        // f64 holds integers exactly up to 2^53 ns (104 days): precise for any run.
        Duration::from_nanos((index as f64 * self.interval_ns).round() as u64)
    }
}

/// What a sender should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send the record `index` now; its latency counts from `intended`.
    Send {
        /// The record's index over all senders.
        index: u64,
        /// Its intended send time since the start.
        intended: Duration,
    },
    /// Nothing is due yet: the next record is due after this long.
    Wait(Duration),
    /// The run is over for this sender.
    Done,
}

/// When a sender stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this many measured (post-warmup) records of this sender.
    Count(u64),
    /// Before the first record intended at or after `warmup + duration`.
    Duration(Duration),
}

/// One sender's view of the schedule: it owns the records `first`, `first + stride`, ...
/// (one sender of `stride` senders), knows which ones fall in the warmup, and when to stop.
#[derive(Debug, Clone)]
pub struct Pacer {
    schedule: Option<Schedule>,
    next_index: u64,
    stride: u64,
    warmup: Duration,
    stop: Stop,
    measured: u64,
}

impl Pacer {
    /// Sender `sender` of `senders` on `schedule` (`None`: closed loop, as fast as possible).
    ///
    /// Records intended before `warmup` are sent but not measured.
    pub fn new(
        schedule: Option<Schedule>,
        sender: u64,
        senders: u64,
        warmup: Duration,
        stop: Stop,
    ) -> Self {
        Self {
            schedule,
            next_index: sender,
            stride: senders.max(1),
            warmup,
            stop,
            measured: 0,
        }
    }

    /// Decides what to do at time `now` (since the start). A `Send` is final: the caller
    /// sends that record (retrying if the client is full) before asking again.
    pub fn next(&mut self, now: Duration) -> Next {
        if let Stop::Count(n) = self.stop
            && self.measured >= n
        {
            return Next::Done;
        }
        let intended = match self.schedule {
            Some(schedule) => {
                let intended = schedule.intended(self.next_index);
                if intended > now {
                    if self.past_end(intended) {
                        return Next::Done;
                    }
                    return Next::Wait(intended - now);
                }
                intended
            }
            None => now,
        };
        if self.past_end(intended) {
            return Next::Done;
        }
        if self.is_measured(intended) {
            self.measured += 1;
        }
        let index = self.next_index;
        self.next_index += self.stride;
        Next::Send { index, intended }
    }

    /// Whether a record intended at `intended` counts in the results.
    pub fn is_measured(&self, intended: Duration) -> bool {
        intended >= self.warmup
    }

    /// Measured records handed out so far.
    pub fn measured(&self) -> u64 {
        self.measured
    }

    fn past_end(&self, intended: Duration) -> bool {
        match self.stop {
            Stop::Duration(d) => intended >= self.warmup + d,
            Stop::Count(_) => false,
        }
    }
}

/// Splits `total` measured records over `senders` senders (the first ones take the rest).
pub fn share(total: u64, senders: u64, sender: u64) -> u64 {
    let senders = senders.max(1);
    total / senders + u64::from(sender < total % senders)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::LatencyRecorder;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn grid_is_fixed_and_shared_by_senders() -> anyhow::Result<()> {
        let schedule = Schedule::new(1000.0)?;
        assert_eq!(schedule.intended(0), Duration::ZERO);
        assert_eq!(schedule.intended(1), MS);
        assert_eq!(schedule.intended(2500), Duration::from_millis(2500));
        // Three senders interleave on one grid: together they hit every slot once.
        let mut all = Vec::new();
        for sender in 0..3 {
            let mut pacer = Pacer::new(Some(schedule), sender, 3, Duration::ZERO, Stop::Count(4));
            while let Next::Send { index, intended } = pacer.next(Duration::from_secs(60)) {
                assert_eq!(intended, schedule.intended(index));
                all.push(index);
            }
        }
        all.sort_unstable();
        assert_eq!(all, (0..12).collect::<Vec<_>>());
        assert!(Schedule::new(0.0).is_err());
        assert!(Schedule::new(f64::NAN).is_err());
        Ok(())
    }

    #[test]
    fn waits_until_the_intended_time() -> anyhow::Result<()> {
        let mut pacer = Pacer::new(
            Some(Schedule::new(100.0)?),
            0,
            1,
            Duration::ZERO,
            Stop::Count(10),
        );
        assert!(matches!(
            pacer.next(Duration::ZERO),
            Next::Send { index: 0, .. }
        ));
        assert_eq!(pacer.next(Duration::from_millis(4)), Next::Wait(6 * MS));
        assert!(matches!(
            pacer.next(Duration::from_millis(10)),
            Next::Send { index: 1, .. }
        ));
        Ok(())
    }

    /// Simulates one sender at 1000 records/s whose client takes 10 µs per send, then an
    /// ack 100 µs later, except that at t = 100 ms the sender stalls for 50 ms. Latency from
    /// the intended time must carry the stall into every record that waited for it; latency
    /// from the actual send time (the coordinated-omission mistake) hides it.
    #[test]
    fn a_stalled_sender_reports_the_stall_in_every_delayed_record() -> anyhow::Result<()> {
        let mut pacer = Pacer::new(
            Some(Schedule::new(1000.0)?),
            0,
            1,
            Duration::ZERO,
            Stop::Duration(Duration::from_secs(1)),
        );
        let service = Duration::from_micros(10);
        let ack = Duration::from_micros(100);
        let mut now = Duration::ZERO;
        let mut stalled = false;
        let (mut open_loop, mut closed_loop) = (LatencyRecorder::new(), LatencyRecorder::new());
        let mut by_index = Vec::new();
        loop {
            match pacer.next(now) {
                Next::Done => break,
                Next::Wait(d) => now += d,
                Next::Send { index, intended } => {
                    if !stalled && now >= Duration::from_millis(100) {
                        stalled = true;
                        now += 50 * MS;
                    }
                    let sent = now;
                    now += service;
                    let acked = sent + ack;
                    open_loop.record(acked - intended);
                    closed_loop.record(acked - sent);
                    by_index.push((index, acked - intended));
                }
            }
        }
        // Every slot of the second was sent, none skipped: the backlog was caught up.
        assert_eq!(by_index.len(), 1000);
        assert!(
            by_index
                .iter()
                .enumerate()
                .all(|(i, (index, _))| *index == i as u64)
        );
        // Record 100 waited the whole stall; record 120 (intended 20 ms into it) waited
        // the remaining ~30 ms plus the sends queued ahead of it.
        let latency = |i: usize| by_index[i].1;
        assert!(latency(100) >= 50 * MS, "{:?}", latency(100));
        assert!(latency(120) >= 30 * MS, "{:?}", latency(120));
        assert!(latency(120) < 31 * MS, "{:?}", latency(120));
        // Once caught up (at 10 µs per send that takes a few ms), latency is the ack time again.
        assert_eq!(latency(200), ack);
        // About 50 records (5%) waited more than 1 ms: p90 is clean, p99 shows the stall.
        let delayed = by_index.iter().filter(|(_, l)| *l > MS).count();
        assert!((50..=52).contains(&delayed), "{delayed}");
        let open = open_loop.percentiles();
        assert!(open.p99_us > 20_000.0, "{open:?}");
        assert!(open.p90_us < 200.0, "{open:?}");
        // Measured from the actual send, the stall disappears entirely.
        let closed = closed_loop.percentiles();
        assert!(closed.max_us < 200.0, "{closed:?}");
        Ok(())
    }

    #[test]
    fn warmup_records_are_sent_but_not_counted() -> anyhow::Result<()> {
        let warmup = Duration::from_millis(5);
        let mut pacer = Pacer::new(Some(Schedule::new(1000.0)?), 0, 1, warmup, Stop::Count(3));
        let mut sent = Vec::new();
        while let Next::Send { intended, .. } = pacer.next(Duration::from_secs(1)) {
            sent.push((intended, pacer.is_measured(intended)));
        }
        // Five warmup records (0..5 ms), then three measured ones.
        assert_eq!(sent.len(), 8);
        assert_eq!(sent.iter().filter(|(_, m)| *m).count(), 3);
        assert_eq!(pacer.measured(), 3);
        assert_eq!(sent[5].0, warmup);
        Ok(())
    }

    #[test]
    fn duration_stops_at_warmup_plus_duration() -> anyhow::Result<()> {
        let mut pacer = Pacer::new(
            Some(Schedule::new(1000.0)?),
            0,
            1,
            Duration::from_millis(2),
            Stop::Duration(Duration::from_millis(3)),
        );
        let mut count = 0;
        while let Next::Send { .. } = pacer.next(Duration::from_secs(1)) {
            count += 1;
        }
        assert_eq!(count, 5);
        // Closed loop: stops once the clock passes the end.
        let mut closed = Pacer::new(None, 0, 1, Duration::ZERO, Stop::Duration(MS));
        assert!(matches!(closed.next(Duration::ZERO), Next::Send { .. }));
        assert_eq!(closed.next(MS), Next::Done);
        // A sender waiting for a slot past the end is done, not waiting.
        let mut open = Pacer::new(
            Some(Schedule::new(1.0)?),
            0,
            1,
            Duration::ZERO,
            Stop::Duration(MS),
        );
        assert!(matches!(open.next(Duration::ZERO), Next::Send { .. }));
        assert_eq!(open.next(Duration::ZERO), Next::Done);
        Ok(())
    }

    #[test]
    fn count_is_shared_out_exactly() {
        assert_eq!(
            (0..3).map(|s| share(10, 3, s)).collect::<Vec<_>>(),
            [4, 3, 3]
        );
        assert_eq!((0..4).map(|s| share(2, 4, s)).sum::<u64>(), 2);
        assert_eq!(share(7, 0, 0), 7);
    }
}

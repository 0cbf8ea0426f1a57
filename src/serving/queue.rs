//! A queue from request handlers to a background thread (the audit writer, the shadow scorer)
//! that never wakes the thread per request: handlers push under a lock; the thread drains
//! everything every tick, or sooner once `early` records wait. Bounded in records: at the
//! bound a push either waits for room or gives the item back, as the caller chooses.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

pub struct Batched<T> {
    q: Mutex<Pending<T>>,
    /// Signals the draining thread (many records, or closing).
    wake: Condvar,
    /// Signals pushers waiting for room.
    room: Condvar,
    cap: usize,
    early: usize,
}

struct Pending<T> {
    items: Vec<T>,
    records: usize,
    closed: bool,
}

/// What a push does when the queue is full.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    Wait,
    GiveBack,
}

impl<T> Batched<T> {
    pub fn new(cap: usize, early: usize) -> Self {
        Batched {
            q: Mutex::new(Pending { items: Vec::new(), records: 0, closed: false }),
            wake: Condvar::new(),
            room: Condvar::new(),
            cap,
            early,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending<T>> {
        self.q.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `item` of `records` records; `Err(item)` if it was not queued (full and
    /// `GiveBack`, or closed).
    pub fn push(&self, item: T, records: usize, full: WhenFull) -> Result<(), T> {
        let mut q = self.lock();
        while q.records >= self.cap && !q.closed {
            if full == WhenFull::GiveBack {
                return Err(item);
            }
            q = self.room.wait(q).unwrap_or_else(|e| e.into_inner());
        }
        if q.closed {
            return Err(item);
        }
        q.records += records;
        q.items.push(item);
        if q.records >= self.early {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Everything queued, after waiting up to `tick` for something; and whether the queue is
    /// closed (then nothing more will come).
    pub fn drain(&self, tick: Duration) -> (Vec<T>, bool) {
        let mut q = self.lock();
        if q.items.is_empty() && !q.closed {
            q = self.wake.wait_timeout(q, tick).unwrap_or_else(|e| e.into_inner()).0;
        }
        q.records = 0;
        self.room.notify_all();
        (std::mem::take(&mut q.items), q.closed)
    }

    /// No more pushes; the draining thread gets what is left, then `closed`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
        self.room.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_gives_back_or_waits_and_a_closed_one_drains_what_is_left() {
        let q = std::sync::Arc::new(Batched::new(2, 100));
        assert!(q.push(1, 1, WhenFull::GiveBack).is_ok());
        assert!(q.push(2, 1, WhenFull::GiveBack).is_ok());
        assert_eq!(q.push(3, 1, WhenFull::GiveBack), Err(3));
        let q2 = q.clone();
        let waiter = std::thread::spawn(move || q2.push(4, 1, WhenFull::Wait));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(q.drain(Duration::from_millis(10)), (vec![1, 2], false));
        assert_eq!(waiter.join().unwrap(), Ok(()));
        q.close();
        assert_eq!(q.drain(Duration::from_millis(10)), (vec![4], true));
        assert_eq!(q.push(5, 1, WhenFull::Wait), Err(5));
    }
}

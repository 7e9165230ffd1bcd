//! Single-threaded synchronization: a notification with generations and a FIFO turn.
//!
//! Both live on one shard (`!Send`); they replace what a mutex or condition variable would
//! do across threads. Neither allocates per wait beyond the waker list.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Wakes every waiter at once. A waiter captures the generation *before* checking its
/// condition, so a notification between the check and the wait is never lost:
///
/// ```ignore
/// loop {
///     let changed = notify.listen();
///     if condition() { break; }
///     changed.await;
/// }
/// ```
#[derive(Debug, Default)]
pub(crate) struct Notify {
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl Notify {
    /// Wakes everyone listening now.
    pub(crate) fn notify_all(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for waker in waiters {
            waker.wake();
        }
    }

    /// A future that completes at the next notification after this call.
    pub(crate) fn listen(&self) -> Listen<'_> {
        Listen {
            notify: self,
            seen: self.generation.get(),
            registered: false,
        }
    }
}

/// See [`Notify::listen`].
#[derive(Debug)]
pub(crate) struct Listen<'a> {
    notify: &'a Notify,
    seen: u64,
    registered: bool,
}

impl Future for Listen<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        if self.notify.generation.get() != self.seen {
            return Poll::Ready(());
        }
        // Register once per generation: a re-poll without a notification (spurious wake)
        // replaces nothing and must not grow the list without bound.
        let mut waiters = self.notify.waiters.borrow_mut();
        if !self.registered || !waiters.iter().any(|waker| waker.will_wake(context.waker())) {
            waiters.push(context.waker().clone());
        }
        drop(waiters);
        self.registered = true;
        Poll::Pending
    }
}

/// First-come, first-served turns: callers are served in the order they called
/// [`Turns::take`], which is what keeps appends from one connection in request order even
/// when an earlier append has to wait (segment roll, backpressure). A caller that gives up
/// its place (drops the future) does not block those behind it.
#[derive(Debug, Default)]
pub(crate) struct Turns {
    next_ticket: Cell<u64>,
    serving: Cell<u64>,
    abandoned: RefCell<BTreeSet<u64>>,
    changed: Notify,
}

impl Turns {
    /// Takes a ticket now; the returned future resolves when it is this caller's turn.
    pub(crate) fn take(&self) -> WaitTurn<'_> {
        let ticket = self.next_ticket.get();
        self.next_ticket.set(ticket + 1);
        WaitTurn {
            turns: self,
            ticket,
            done: false,
        }
    }

    fn advance(&self) {
        let mut serving = self.serving.get() + 1;
        let mut abandoned = self.abandoned.borrow_mut();
        while abandoned.remove(&serving) {
            serving += 1;
        }
        drop(abandoned);
        self.serving.set(serving);
        self.changed.notify_all();
    }
}

/// See [`Turns::take`].
#[derive(Debug)]
pub(crate) struct WaitTurn<'a> {
    turns: &'a Turns,
    ticket: u64,
    done: bool,
}

impl<'a> Future for WaitTurn<'a> {
    type Output = Turn<'a>;
    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Turn<'a>> {
        assert!(!self.done, "WaitTurn polled after completion");
        if self.turns.serving.get() == self.ticket {
            self.done = true;
            return Poll::Ready(Turn { turns: self.turns });
        }
        let mut listen = self.turns.changed.listen();
        // The generation was captured before the check above could change: re-check.
        if self.turns.serving.get() == self.ticket {
            self.done = true;
            return Poll::Ready(Turn { turns: self.turns });
        }
        let _ = Pin::new(&mut listen).poll(context);
        Poll::Pending
    }
}

impl Drop for WaitTurn<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.turns.serving.get() == self.ticket {
            self.turns.advance();
        } else {
            self.turns.abandoned.borrow_mut().insert(self.ticket);
        }
    }
}

/// Holding a turn; the next caller is served when it is dropped.
#[derive(Debug)]
pub(crate) struct Turn<'a> {
    turns: &'a Turns,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.turns.advance();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn turns_are_fifo_and_survive_abandonment() {
        let turns = Turns::default();
        let mut first = turns.take();
        let second = turns.take();
        let mut third = turns.take();
        let held = (&mut first)
            .now_or_never()
            .expect("first is served at once");
        assert!((&mut third).now_or_never().is_none());
        drop(second); // gives up its place while waiting
        drop(held);
        assert!(
            (&mut third).now_or_never().is_some(),
            "third is served after the abandoned second"
        );
    }

    #[test]
    fn listen_sees_notifications_after_creation_only() {
        let notify = Notify::default();
        notify.notify_all();
        let mut listen = notify.listen();
        assert!((&mut listen).now_or_never().is_none());
        notify.notify_all();
        assert!(listen.now_or_never().is_some());
    }
}

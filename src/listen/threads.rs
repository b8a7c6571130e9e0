//! The daemon's thread pools: a fixed number of detached threads that take
//! work from one [`Queue`] under one lock, run it outside the lock, and hand
//! it back to the queue when done. The mirrors' worker pool and the action
//! runner differ only in their queues.

use crate::sync::{lock, wait};
use std::sync::{Arc, Condvar, Mutex};

/// What a pool's threads take their work from.
pub trait Queue: Send + 'static {
    /// One piece of work.
    type Work: Send + 'static;

    /// The next piece of work to run now, taken off the queue.
    fn take(&mut self) -> Option<Self::Work>;

    /// `work` has run (called under the lock, before its thread takes more).
    fn done(&mut self, _work: Self::Work) {}
}

struct State<Q> {
    queue: Q,
    running: usize,
    stopping: bool,
}

/// The threads and their queue; every clone is a handle on the same ones.
pub struct Threads<Q> {
    shared: Arc<(Mutex<State<Q>>, Condvar)>,
}

impl<Q> Clone for Threads<Q> {
    fn clone(&self) -> Self {
        Threads {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<Q: Queue> Threads<Q> {
    /// Starts `threads` threads (at least one) that `run` what `queue` gives.
    /// Detached: at shutdown, running work is not joined; the caller bounds
    /// its wait with [`Threads::idle`].
    pub fn start<F>(threads: usize, queue: Q, run: F) -> Threads<Q>
    where
        F: Fn(&Q::Work) + Clone + Send + 'static,
    {
        let state = State {
            queue,
            running: 0,
            stopping: false,
        };
        let shared = Arc::new((Mutex::new(state), Condvar::new()));
        for _ in 0..threads.max(1) {
            let (shared, run) = (Arc::clone(&shared), run.clone());
            std::thread::spawn(move || work(&shared, &run));
        }
        Threads { shared }
    }

    /// Changes the queue and wakes a thread for what was added.
    pub fn submit<R>(&self, change: impl FnOnce(&mut Q) -> R) -> R {
        let result = self.with(change);
        self.shared.1.notify_one();
        result
    }

    /// Reads or changes the queue, waking no thread.
    pub fn with<R>(&self, look: impl FnOnce(&mut Q) -> R) -> R {
        look(&mut lock(&self.shared.0).queue)
    }

    /// True when no work is running.
    pub fn idle(&self) -> bool {
        lock(&self.shared.0).running == 0
    }

    /// Starts no more work; running work goes on to its end.
    pub fn stop(&self) {
        lock(&self.shared.0).stopping = true;
        self.shared.1.notify_all();
    }
}

fn work<Q: Queue>(shared: &(Mutex<State<Q>>, Condvar), run: &impl Fn(&Q::Work)) {
    let (mutex, wake) = shared;
    let mut state = lock(mutex);
    loop {
        if state.stopping {
            return;
        }
        let Some(work) = state.queue.take() else {
            state = wait(wake, state);
            continue;
        };
        state.running += 1;
        drop(state);
        run(&work);
        state = lock(mutex);
        state.running -= 1;
        state.queue.done(work);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Numbers, each handed back to the queue once run.
    #[derive(Default)]
    struct Numbers {
        waiting: VecDeque<u32>,
        done: Vec<u32>,
    }

    impl Queue for Numbers {
        type Work = u32;

        fn take(&mut self) -> Option<u32> {
            self.waiting.pop_front()
        }

        fn done(&mut self, work: u32) {
            self.done.push(work);
        }
    }

    #[test]
    fn every_piece_runs_once_and_comes_back_to_the_queue() {
        let (sender, ran) = mpsc::channel();
        let threads = Threads::start(3, Numbers::default(), move |n: &u32| {
            sender.send(*n).unwrap();
        });
        for n in 0..50 {
            threads.submit(|queue| queue.waiting.push_back(n));
        }
        let mut seen: Vec<u32> = (0..50)
            .map(|_| ran.recv_timeout(Duration::from_secs(60)).unwrap())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
        threads.stop();
        while !threads.idle() {
            std::thread::yield_now();
        }
        let mut done = threads.with(|queue| std::mem::take(&mut queue.done));
        done.sort_unstable();
        assert_eq!(done, (0..50).collect::<Vec<_>>());
    }
}

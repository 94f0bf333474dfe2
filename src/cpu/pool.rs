//! A small persistent worker pool for the CPU path's parallel loops.
//!
//! A token runs ~200 short parallel regions (one per matrix product), each a few tens of
//! microseconds of work. A general-purpose pool that puts idle workers to sleep between regions
//! pays a wake-up on every one; here workers spin briefly on one atomic word between regions and
//! only then sleep, so back-to-back regions cost a cache-line transfer, not a syscall.
//!
//! Protocol: the job word packs `generation | task count | next task index`. The caller writes
//! the closure pointer, then publishes the word with a new generation and index 0. A worker claims
//! a task by compare-and-swap on the word, which can only succeed while that generation is current
//! and tasks remain, so a worker never runs a stale job (the next job's pointer is written only
//! after every task of the current one is claimed); the caller works too, and returns only when
//! every task of its job has finished. Which thread runs a task never changes what it computes:
//! each task owns whole output rows, so results are the same at any thread count.
//!
//! Natively the workers are `std::thread`s started with the pool. In the threaded wasm build they
//! are Web Workers the JavaScript wrapper starts on the module's shared memory, each calling
//! [`worker_main`] (through the binding), which runs the same loop until [`stop_workers`]; the
//! pool counts the workers in their loop, and with none the caller runs everything itself. The
//! page's main thread may not block (the browser refuses `memory.atomic.wait` there), so the
//! caller side only ever spins: the pool is a constant static (no lazy initialisation to wait
//! on), its submit lock is never contended (one caller), and sleeping workers are woken with
//! `memory.atomic.notify`, which never blocks.

use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Mutex;

/// Word layout: generation in bits 40–63, task count in 20–39, next index in 0–19.
const MASK: u64 = (1 << 20) - 1;
const GEN_MASK: u64 = (1 << 24) - 1;

fn gen_of(w: u64) -> u64 {
    w >> 40
}

type Task<'a> = &'a (dyn Fn(usize) + Sync);

pub struct Pool {
    shared: &'static Shared,
    /// Serializes jobs from different caller threads.
    submit: Mutex<()>,
}

struct Shared {
    word: AtomicU64,
    /// Points at a `Task` on the caller's stack while its job runs.
    job: AtomicPtr<()>,
    done: AtomicUsize,
    /// Workers that take tasks (natively: started; in wasm: in their loop).
    workers: AtomicUsize,
    /// Bumped by `stop` to send every worker of the previous epoch out of its loop.
    epoch: AtomicUsize,
    park: park::Park,
}

impl Shared {
    const fn new() -> Shared {
        Shared {
            word: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            done: AtomicUsize::new(0),
            workers: AtomicUsize::new(0),
            epoch: AtomicUsize::new(0),
            park: park::Park::new(),
        }
    }
}

impl Pool {
    /// A pool of `threads` (≥ 1) including the calling thread; `None` if a thread cannot start.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(threads: usize) -> Option<Pool> {
        let pool = Pool::single();
        let shared = pool.shared;
        for i in 0..threads.max(1) - 1 {
            let epoch = shared.epoch.load(Acquire);
            std::thread::Builder::new()
                .name(format!("wisp-cpu-{i}"))
                .spawn(move || shared.work_loop(epoch))
                .ok()?;
            shared.workers.fetch_add(1, Release);
        }
        Some(pool)
    }

    /// Everything on the calling thread.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn single() -> Pool {
        Pool { shared: Box::leak(Box::new(Shared::new())), submit: Mutex::new(()) }
    }

    pub fn threads(&self) -> usize {
        self.shared.workers.load(Acquire) + 1
    }

    /// Runs `f(0)`, …, `f(tasks - 1)` across the pool and returns when all have finished.
    pub fn run(&self, tasks: usize, f: Task) {
        if tasks <= 1 || self.shared.workers.load(Acquire) == 0 {
            (0..tasks).for_each(f);
            return;
        }
        if tasks > MASK as usize {
            // more tasks than the word can count: run in rounds
            for base in (0..tasks).step_by(MASK as usize) {
                let n = (tasks - base).min(MASK as usize);
                self.run(n, &|i| f(base + i));
            }
            return;
        }
        let _guard = self.submit.lock().unwrap_or_else(|e| e.into_inner());
        let s = self.shared;
        let slot: Task = f;
        s.job.store(&slot as *const Task as *mut (), Relaxed);
        s.done.store(0, Relaxed);
        let gen = (gen_of(s.word.load(Relaxed)) + 1) & GEN_MASK;
        s.word.store((gen << 40) | ((tasks as u64) << 20), SeqCst);
        s.park.wake_all();
        s.drain(gen, f);
        while s.done.load(Acquire) < tasks {
            std::hint::spin_loop();
        }
    }
}

/// The threaded wasm build's pool: one per module instance, shared by every engine in the page.
#[cfg(target_arch = "wasm32")]
static SHARED: Shared = Shared::new();
#[cfg(target_arch = "wasm32")]
pub static POOL: Pool = Pool { shared: &SHARED, submit: Mutex::new(()) };

/// The current worker epoch: pass it to [`worker_main`] from a worker started now.
#[cfg(target_arch = "wasm32")]
pub fn epoch() -> usize {
    SHARED.epoch.load(Acquire)
}

/// Runs the calling thread (a Web Worker on the shared memory) as a worker of the pool until
/// [`stop_workers`]; returns at once if `epoch` has already been stopped. False where the build
/// has no shared memory (a worker could never be woken).
#[cfg(target_arch = "wasm32")]
pub fn worker_main(epoch: usize) -> bool {
    if !cfg!(target_feature = "atomics") {
        return false;
    }
    SHARED.workers.fetch_add(1, AcqRel);
    SHARED.work_loop(epoch);
    SHARED.workers.fetch_sub(1, AcqRel);
    true
}

/// Sends every worker out of its loop (they finish any task they hold first). Call between
/// parallel regions, never during one.
#[cfg(target_arch = "wasm32")]
pub fn stop_workers() {
    SHARED.epoch.fetch_add(1, SeqCst);
    SHARED.park.wake_all();
}

impl Shared {
    /// Claims and runs tasks of generation `gen` until none remain.
    fn drain(&self, gen: u64, f: impl Fn(usize)) {
        let mut w = self.word.load(Acquire);
        loop {
            let (idx, tasks) = (w & MASK, (w >> 20) & MASK);
            if gen_of(w) != gen || idx >= tasks {
                return;
            }
            match self.word.compare_exchange_weak(w, w + 1, AcqRel, Acquire) {
                Ok(_) => {
                    f(idx as usize);
                    self.done.fetch_add(1, Release);
                    w = self.word.load(Acquire);
                }
                Err(now) => w = now,
            }
        }
    }

    /// A worker's life: wait for a new generation (spin, then sleep), help drain it, until the
    /// epoch moves past `epoch`.
    #[cfg_attr(all(target_arch = "wasm32", not(target_feature = "atomics")), allow(dead_code))]
    fn work_loop(&self, epoch: usize) {
        // jobs published before this worker arrived are the caller's and earlier workers'
        let mut seen = gen_of(self.word.load(Acquire));
        let stale = |seen: u64| gen_of(self.word.load(SeqCst)) == seen && self.epoch.load(SeqCst) == epoch;
        loop {
            let mut spin = park::Spin::start();
            while stale(seen) {
                if spin.expired() {
                    self.park.sleep(|| stale(seen));
                }
                std::hint::spin_loop();
            }
            if self.epoch.load(Acquire) != epoch {
                return;
            }
            seen = gen_of(self.word.load(Acquire));
            let job = self.job.load(Relaxed) as *const Task;
            // SAFETY: `job` is only called after a successful claim in `drain`, which can happen
            // only while generation `seen` is current and has unclaimed tasks, so `job` is that
            // generation's closure, which the caller keeps alive until all its tasks are done.
            self.drain(seen, |i| unsafe { (*job)(i) });
        }
    }
}

/// How idle workers wait: spin a while, then sleep until the caller wakes them.
mod park {
    /// Natively: a Condvar. The caller takes the lock only when someone sleeps.
    #[cfg(not(target_arch = "wasm32"))]
    pub struct Park {
        sleepers: std::sync::atomic::AtomicUsize,
        lock: std::sync::Mutex<()>,
        wake: std::sync::Condvar,
    }

    #[cfg(not(target_arch = "wasm32"))]
    impl Park {
        pub const fn new() -> Park {
            Park {
                sleepers: std::sync::atomic::AtomicUsize::new(0),
                lock: std::sync::Mutex::new(()),
                wake: std::sync::Condvar::new(),
            }
        }

        /// Sleeps while `waiting()` holds.
        pub fn sleep(&self, waiting: impl Fn() -> bool) {
            use std::sync::atomic::Ordering::SeqCst;
            let mut l = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.sleepers.fetch_add(1, SeqCst);
            while waiting() {
                l = self.wake.wait(l).unwrap_or_else(|e| e.into_inner());
            }
            self.sleepers.fetch_sub(1, SeqCst);
        }

        /// Wakes every sleeper (after the state they wait on has changed).
        pub fn wake_all(&self) {
            if self.sleepers.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                let _l = self.lock.lock().unwrap_or_else(|e| e.into_inner());
                self.wake.notify_all();
            }
        }
    }

    /// Threaded wasm: `memory.atomic.wait32` on a sequence word in the workers and
    /// `memory.atomic.notify` from the caller, which never blocks (the page's main thread may not).
    #[cfg(target_arch = "wasm32")]
    pub struct Park {
        #[cfg_attr(not(target_feature = "atomics"), allow(dead_code))]
        sleepers: std::sync::atomic::AtomicUsize,
        seq: std::sync::atomic::AtomicI32,
    }

    #[cfg(target_arch = "wasm32")]
    impl Park {
        pub const fn new() -> Park {
            Park {
                sleepers: std::sync::atomic::AtomicUsize::new(0),
                seq: std::sync::atomic::AtomicI32::new(0),
            }
        }

        /// Sleeps while `waiting()` holds. A wake between reading `seq` and waiting changes
        /// `seq`, so the wait returns at once instead of missing it.
        #[cfg_attr(not(target_feature = "atomics"), allow(unused_variables, dead_code))]
        pub fn sleep(&self, waiting: impl Fn() -> bool) {
            #[cfg(target_feature = "atomics")]
            {
                use std::sync::atomic::Ordering::SeqCst;
                self.sleepers.fetch_add(1, SeqCst);
                loop {
                    let s = self.seq.load(SeqCst);
                    if !waiting() {
                        break;
                    }
                    // SAFETY: `seq` is a live, aligned i32 in the shared memory.
                    unsafe { core::arch::wasm32::memory_atomic_wait32(self.seq.as_ptr(), s, -1) };
                }
                self.sleepers.fetch_sub(1, SeqCst);
            }
        }

        pub fn wake_all(&self) {
            use std::sync::atomic::Ordering::SeqCst;
            self.seq.fetch_add(1, SeqCst);
            #[cfg(target_feature = "atomics")]
            if self.sleepers.load(SeqCst) > 0 {
                // SAFETY: as in `sleep`; notify never blocks.
                unsafe { core::arch::wasm32::memory_atomic_notify(self.seq.as_ptr(), u32::MAX) };
            }
        }
    }

    /// How long an idle worker spins before it sleeps: ~300 µs natively; in wasm (no clock
    /// without the browser) a count of polls of about that length.
    pub struct Spin {
        polls: u32,
        #[cfg(not(target_arch = "wasm32"))]
        start: std::time::Instant,
    }

    impl Spin {
        pub fn start() -> Spin {
            Spin {
                polls: 0,
                #[cfg(not(target_arch = "wasm32"))]
                start: std::time::Instant::now(),
            }
        }

        pub fn expired(&mut self) -> bool {
            self.polls = self.polls.wrapping_add(1);
            #[cfg(not(target_arch = "wasm32"))]
            {
                self.polls.is_multiple_of(64) && self.start.elapsed() > std::time::Duration::from_micros(300)
            }
            #[cfg(target_arch = "wasm32")]
            {
                self.polls > 1 << 18
            }
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::Pool;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    /// Every task of every job runs exactly once, whichever thread takes it, over many
    /// back-to-back jobs (the workers spin between them) and after the workers have slept.
    #[test]
    fn each_task_once_across_jobs_and_sleeps() {
        let pool = Pool::new(3).unwrap();
        assert_eq!(pool.threads(), 3);
        for round in 0..3 {
            for tasks in [0usize, 1, 2, 3, 7, 64, 1000] {
                let hits: Vec<AtomicU64> = (0..tasks).map(|_| AtomicU64::new(0)).collect();
                pool.run(tasks, &|i| {
                    hits[i].fetch_add(1 + i as u64, Relaxed);
                });
                for (i, h) in hits.iter().enumerate() {
                    assert_eq!(h.load(Relaxed), 1 + i as u64, "task {i} of {tasks}, round {round}");
                }
            }
            // long enough for every worker to go to sleep: the next job must wake them
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

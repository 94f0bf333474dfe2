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
//! every task of its job has finished.

use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it sleeps.
const SPIN: Duration = Duration::from_micros(300);

/// Word layout: generation in bits 40–63, task count in 20–39, next index in 0–19.
const MASK: u64 = (1 << 20) - 1;
const GEN_MASK: u64 = (1 << 24) - 1;

fn gen_of(w: u64) -> u64 {
    w >> 40
}

type Task<'a> = &'a (dyn Fn(usize) + Sync);

pub struct Pool {
    workers: usize,
    shared: &'static Shared,
    /// Serializes jobs from different caller threads.
    submit: Mutex<()>,
}

struct Shared {
    word: AtomicU64,
    /// Points at a `Task` on the caller's stack while its job runs.
    job: AtomicPtr<()>,
    done: AtomicUsize,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Pool {
    /// A pool of `threads` (≥ 1) including the calling thread; `None` if a thread cannot start.
    pub fn new(threads: usize) -> Option<Pool> {
        let mut pool = Pool::single();
        for i in 0..threads.max(1) - 1 {
            let shared = pool.shared;
            std::thread::Builder::new()
                .name(format!("wisp-cpu-{i}"))
                .spawn(move || shared.work_loop())
                .ok()?;
            pool.workers += 1;
        }
        Some(pool)
    }

    /// Everything on the calling thread.
    pub fn single() -> Pool {
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            word: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            done: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }));
        Pool { workers: 0, shared, submit: Mutex::new(()) }
    }

    pub fn threads(&self) -> usize {
        self.workers + 1
    }

    /// Runs `f(0)`, …, `f(tasks - 1)` across the pool and returns when all have finished.
    pub fn run(&self, tasks: usize, f: Task) {
        if self.workers == 0 || tasks <= 1 {
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
        if s.sleepers.load(SeqCst) > 0 {
            let _l = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        s.drain(gen, f);
        while s.done.load(Acquire) < tasks {
            std::hint::spin_loop();
        }
    }
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

    fn work_loop(&self) {
        let mut seen = 0u64;
        loop {
            // wait for a new generation: spin, then sleep
            let start = Instant::now();
            let mut w = self.word.load(Acquire);
            let mut spins = 0u32;
            while gen_of(w) == seen {
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(64) && start.elapsed() > SPIN {
                    let mut l = self.lock.lock().unwrap_or_else(|e| e.into_inner());
                    self.sleepers.fetch_add(1, SeqCst);
                    while gen_of(self.word.load(SeqCst)) == seen {
                        l = self.wake.wait(l).unwrap_or_else(|e| e.into_inner());
                    }
                    self.sleepers.fetch_sub(1, SeqCst);
                }
                std::hint::spin_loop();
                w = self.word.load(Acquire);
            }
            seen = gen_of(w);
            let job = self.job.load(Relaxed) as *const Task;
            // SAFETY: `job` is only called after a successful claim in `drain`, which can happen
            // only while generation `seen` is current and has unclaimed tasks, so `job` is that
            // generation's closure, which the caller keeps alive until all its tasks are done.
            self.drain(seen, |i| unsafe { (*job)(i) });
        }
    }
}

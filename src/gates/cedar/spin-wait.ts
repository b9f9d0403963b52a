// Spin-then-park for the Cedar workers. Piscina's worker parks in Atomics.wait between tasks,
// and waking a parked thread on another CPU costs ~35-40 µs per direction on these VMs: a bare
// piscina round trip measured 87 µs p50 here, 12 µs with both threads on one CPU (taskset), so
// the wake-ups, not piscina, were most of a cold decision's 133 µs. Spinning for a short window
// before parking lets the next task that arrives within it start at once (round trip ~30 µs
// p50 with a 50 µs window, measured). The cost is bounded: at most `micros` of CPU after each
// task, and nothing at all while no decisions come.
//
// The worker's Atomics.wait is wrapped (this thread only; the Cedar code never waits): same
// arguments, same results ('not-equal' when the value moved, otherwise whatever parking says).

type Wait = (typedArray: Int32Array | BigInt64Array, index: number, value: number | bigint, timeout?: number) => 'ok' | 'not-equal' | 'timed-out';

/** how many waits ended while spinning, and how many parked (tests read these through the worker) */
export const spinStats = { spun: 0, parked: 0 };

export function installSpinWait(micros: number): void {
  if (!(micros > 0)) return;
  const park = Atomics.wait as Wait;
  const windowMs = micros / 1000;
  const spinThenPark: Wait = (typedArray, index, value, timeout) => {
    const until = performance.now() + windowMs;
    while (Atomics.load(typedArray as Int32Array, index) === value) {
      if (performance.now() >= until) {
        spinStats.parked++;
        return park(typedArray, index, value, timeout);
      }
    }
    spinStats.spun++;
    return 'not-equal';
  };
  (Atomics as unknown as { wait: Wait }).wait = spinThenPark;
}

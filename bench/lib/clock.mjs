// The clock the fixture stamps SSE events with and the bench reads on arrival.
/** Wall clock in µs; comparable across processes on one machine (unlike hrtime). */
export function wallClockMicros() {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

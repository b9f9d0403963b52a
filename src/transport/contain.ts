// Containment of exceptions nobody expected. A governance proxy that crashes takes every
// client's governance with it, so each entry point that outside code calls (uWS callbacks,
// upstream sink callbacks, timers, child-process events) catches what it throws, answers that
// request with -32603 (`internal_error`, carrying the correlation id), has it counted by
// whoever owns the telemetry, and logs it here: one line per incident, with the stack.
import { logger } from '../telemetry/log.js';

export function reportInternal(e: unknown, correlationId: string | undefined, where: string): void {
  try {
    const err = e instanceof Error ? e : new Error(String(e));
    logger.error({ err, correlation_id: correlationId, where }, `internal error contained in ${where}: ${err.message}`);
  } catch {
    // Logging must never be what turns a contained error into a crash.
  }
}

// The pipeline's telemetry as the sidecar (and wrap's governance service) wire it: metrics,
// one audit line per decision, and the BLOCKED / WOULD_BLOCK log lines.
import type { DecisionRecord, PipelineTelemetry } from '../pipeline.js';
import { GATE_LABELS } from '../gates/decision.js';
import { GovError } from '../core/errors.js';
import type { AuditWriter } from './audit.js';
import { logger } from './log.js';
import { metrics } from './metrics.js';

const written = (): undefined => undefined;

/** Metrics, audit line and WOULD_BLOCK log for each decision; kept off the hot path's allocations where it can. */
export class Telemetry implements PipelineTelemetry {
  private readonly strict: boolean;
  private lastWarned = 0;

  /**
   * `failClosed`: while the trail cannot be written, governed calls are refused (-32013) instead
   * of forwarded unrecorded. Strict durability makes each decision wait for its line's fdatasync.
   */
  constructor(private readonly audit: AuditWriter, private readonly failClosed = false) {
    this.strict = audit.durability === 'strict';
  }

  /**
   * Buffered and writable (the hot path): undefined, nothing allocated beyond the line. Strict,
   * or a trail that cannot be written: a promise of the error to answer with instead (never
   * rejected, so a caller that ignores it leaks nothing), undefined to go on.
   */
  decision(r: DecisionRecord): void | Promise<GovError | undefined> {
    const d = r.decision;
    metrics.recordDecision(d.gate, d.action);
    if (d.cedar !== undefined) metrics.recordCedar(d.action === 'deny' ? 'deny' : 'allow', d.policyIds?.[0] ?? d.policyId ?? 'default', d.cedar.micros / 1000);
    const decision = r.wouldBlock ? (d.action === 'approve' ? 'auto_approved' : 'would_block') : d.action;
    if (r.wouldBlock) {
      logger.info({ server_id: r.sourceId, tool: r.tool, decision: d.action, gate: GATE_LABELS[d.gate], reason: d.reason, correlation_id: r.correlationId }, 'WOULD_BLOCK');
    } else if (d.action === 'deny') {
      logger.info({ server_id: r.sourceId, tool: r.tool, gate: GATE_LABELS[d.gate], reason: d.reason, correlation_id: r.correlationId }, 'BLOCKED');
    }
    const line = {
      correlationId: r.correlationId, session: r.session, principal: r.principal.id, method: r.method, tool: r.tool,
      source: r.sourceId, gate: GATE_LABELS[d.gate], decision, mode: r.mode, reason: d.reason, durationMs: r.judgeMs, snapshot: r.snapshot,
    };
    if (this.strict) return this.audit.writeDurable(line).then(written, this.unwritten);
    this.audit.write(line);
    const failure = this.audit.failure;
    return failure === undefined ? undefined : Promise.resolve(this.unwritten(failure));
  }

  /** The decision's line could not be written: refuse (fail_closed) or go on, counted and logged. */
  private readonly unwritten = (err: unknown): GovError | undefined => {
    if (this.failClosed) {
      metrics.recordAuditUnrecorded('refused');
      return new GovError('service_unavailable', { details: 'audit trail cannot be written' });
    }
    metrics.recordAuditUnrecorded('forwarded');
    const now = Date.now();
    if (now - this.lastWarned >= 1000) {
      // once a second at most: the metric counts every call, the log says it is happening
      this.lastWarned = now;
      logger.warn({ err: (err as Error)?.message ?? String(err) }, 'audit trail cannot be written: forwarding governed calls unrecorded (audit.on_failure: continue)');
    }
    return undefined;
  };

  request(method: string, tool: string | undefined, status: 'success' | 'error', durationMs: number): void {
    metrics.recordRequest(method, tool, status, durationMs);
  }

  error(kind: string, method: string): void {
    metrics.recordError(kind, method);
  }

  framing(errorType: string): void {
    metrics.recordFraming('http', errorType);
  }

  upstream(statusCode: number, durationMs: number): void {
    metrics.recordUpstream(statusCode, durationMs);
  }
}


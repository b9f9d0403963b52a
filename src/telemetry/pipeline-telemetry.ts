// The pipeline's telemetry as the sidecar (and wrap's governance service) wire it: metrics,
// one audit line per decision, and the BLOCKED / WOULD_BLOCK log lines.
import type { DecisionRecord, PipelineTelemetry } from '../pipeline.js';
import { GATE_LABELS } from '../gates/decision.js';
import type { AuditWriter } from './audit.js';
import { logger } from './log.js';
import { metrics } from './metrics.js';

/** Metrics, audit line and WOULD_BLOCK log for each decision; kept off the hot path's allocations where it can. */
export class Telemetry implements PipelineTelemetry {
  constructor(private readonly audit: AuditWriter) {}

  decision(r: DecisionRecord): void {
    const d = r.decision;
    metrics.recordDecision(d.gate, d.action);
    if (d.cedar !== undefined) metrics.recordCedar(d.action === 'deny' ? 'deny' : 'allow', d.policyIds?.[0] ?? d.policyId ?? 'default', d.cedar.micros / 1000);
    const decision = r.wouldBlock ? (d.action === 'approve' ? 'auto_approved' : 'would_block') : d.action;
    if (r.wouldBlock) {
      logger.info({ server_id: r.sourceId, tool: r.tool, decision: d.action, gate: GATE_LABELS[d.gate], reason: d.reason, correlation_id: r.correlationId }, 'WOULD_BLOCK');
    } else if (d.action === 'deny') {
      logger.info({ server_id: r.sourceId, tool: r.tool, gate: GATE_LABELS[d.gate], reason: d.reason, correlation_id: r.correlationId }, 'BLOCKED');
    }
    this.audit.write({
      correlationId: r.correlationId, session: r.session, principal: r.principal.id, method: r.method, tool: r.tool,
      source: r.sourceId, gate: GATE_LABELS[d.gate], decision, mode: r.mode, reason: d.reason, durationMs: r.judgeMs, snapshot: r.snapshot,
    });
  }

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


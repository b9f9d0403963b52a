// The webhook channel: POSTs each approval request (and its outcome) as signed JSON to a URL,
// and takes decisions back on the inbound port (POST /approvals/<id>), signed the same way.
//
// Signature (both directions), Stripe-style so any stack can check it:
//   x-thoughtgate-timestamp: <unix seconds>
//   x-thoughtgate-signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>
// A callback is accepted within 5 minutes of its timestamp. The id is in the URL, not under
// the signature, so a captured "approve" could be replayed against another pending call:
// a body that names its `id` (which must match the URL) is bound to it; one that does not
// may be used once: its signature is claimed in the state store until its window closes, so
// neither a restart nor another replica accepts it again.
// Who decided is the webhook itself (`webhook:<workflow>`): whoever holds the secret speaks
// for the webhook, so a `by` in the body (still accepted) names nobody.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type http from 'node:http';
import { maskedArguments } from '../redact.js';
import { REFUSAL_STATUS, type ApprovalChannel, type ApprovalDecider, type ApprovalRecord } from '../types.js';
import { readBody, type AdminRoute } from '../../admin/server.js';

export type ChannelLog = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export interface WebhookChannelOptions {
  url: string;
  /** HMAC key for what we send and for the callbacks we accept */
  secret: string;
  /** where the receiver sends decisions, e.g. http://thoughtgate.internal:7468 */
  callbackBase: string;
  log: ChannelLog;
  fetchImpl?: typeof fetch;
  /** waits before each retry; network errors, 429 and 5xx are retried (default 1 s, 4 s, 15 s) */
  retryDelaysMs?: number[];
  /** per attempt (default 10 s) */
  timeoutMs?: number;
}

export const SIGNATURE_HEADER = 'x-thoughtgate-signature';
export const TIMESTAMP_HEADER = 'x-thoughtgate-timestamp';
/** how far a callback's timestamp may be from our clock */
export const MAX_SKEW_S = 300;
const CALLBACK_LIMIT = 16 * 1024;
const MAX_BY = 200;
const MAX_REASON = 4000;
const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/** `sha256=<hex>` over `timestamp.body`. */
export function signWebhook(secret: string, timestamp: string, body: string | Buffer): string {
  return 'sha256=' + createHmac('sha256', secret).update(timestamp + '.').update(body).digest('hex');
}

/** The headers that sign `body` now. */
export function signedHeaders(secret: string, body: string, nowMs: number = Date.now()): Record<string, string> {
  const ts = String(Math.floor(nowMs / 1000));
  return { 'content-type': 'application/json', [TIMESTAMP_HEADER]: ts, [SIGNATURE_HEADER]: signWebhook(secret, ts, body) };
}

/** Checks a signed request; undefined when good, else why not (for the log, not the caller). */
export function verifyWebhookSignature(secret: string, headers: Record<string, string | undefined>, rawBody: Buffer, nowMs: number): string | undefined {
  if (secret === '') return 'no webhook secret is configured';
  const ts = headers[TIMESTAMP_HEADER];
  const sig = headers[SIGNATURE_HEADER];
  if (ts === undefined || !/^\d{1,12}$/.test(ts)) return `missing or malformed ${TIMESTAMP_HEADER}`;
  if (Math.abs(nowMs / 1000 - Number(ts)) > MAX_SKEW_S) return `${TIMESTAMP_HEADER} is more than ${MAX_SKEW_S} s from now`;
  const m = sig === undefined ? null : /^sha256=([0-9a-fA-F]{64})$/.exec(sig);
  if (m === null) return `missing or malformed ${SIGNATURE_HEADER}`;
  const want = Buffer.from(signWebhook(secret, ts, rawBody).slice('sha256='.length), 'hex');
  return timingSafeEqual(Buffer.from(m[1]!, 'hex'), want) ? undefined : 'signature does not match';
}

/** What the receiver is asked: everything a person needs to decide, and where to answer. */
export function requestedPayload(rec: ApprovalRecord, callbackBase: string): Record<string, unknown> {
  return {
    type: 'approval.requested',
    id: rec.id,
    tool: rec.tool,
    principal: rec.principal,
    // redact_fields hold here too: the receiver is one more surface that shows the request.
    arguments: rec.arguments === undefined ? null : maskedArguments(rec),
    workflow: rec.workflow,
    session: rec.sessionId ?? null,
    created_at: iso(rec.createdAt),
    expires_at: iso(rec.expiresAt),
    required_approvals: rec.requiredApprovals,
    callback_url: callbackBase.replace(/\/+$/, '') + '/approvals/' + encodeURIComponent(rec.id),
  };
}

/** The outcome, so the receiver can close its ticket or message. */
export function updatedPayload(rec: ApprovalRecord): Record<string, unknown> {
  return {
    type: `approval.${rec.state}`,
    id: rec.id,
    tool: rec.tool,
    principal: rec.principal,
    workflow: rec.workflow,
    session: rec.sessionId ?? null,
    state: rec.state,
    decided_by: rec.decidedBy ?? null,
    decided_at: iso(rec.decidedAt),
    reason: rec.reason ?? null,
  };
}

export class WebhookChannel implements ApprovalChannel {
  readonly name = 'webhook';
  private readonly o: WebhookChannelOptions;
  private readonly fetchImpl: typeof fetch;
  private readonly delays: number[];
  /** aborts deliveries (and their backoff waits) at close */
  private readonly stop = new AbortController();

  constructor(options: WebhookChannelOptions) {
    // An unsigned channel would accept decisions from anyone who can reach the inbound port.
    if (options.secret === '') throw new Error('the webhook channel needs a secret (it signs requests and verifies callbacks)');
    new URL(options.url); // throws on a malformed URL at start, not at the first approval
    this.o = options;
    this.fetchImpl = options.fetchImpl ?? fetch;
    this.delays = options.retryDelaysMs ?? [1000, 4000, 15_000];
  }

  async start(_decider: ApprovalDecider): Promise<void> {
    // Decisions arrive over the inbound port (webhookRoute), which holds the decider.
  }

  async post(rec: ApprovalRecord): Promise<void> {
    await this.deliver(requestedPayload(rec, this.o.callbackBase), rec.id);
  }

  async update(rec: ApprovalRecord): Promise<void> {
    await this.deliver(updatedPayload(rec), rec.id);
  }

  async close(): Promise<void> {
    this.stop.abort();
  }

  /**
   * POSTs with retries. A failure is logged, not thrown: the record stays pending and is
   * decided in the console or CLI instead. Each attempt is signed afresh (its own timestamp).
   */
  private async deliver(payload: Record<string, unknown>, id: string): Promise<boolean> {
    const body = JSON.stringify(payload);
    const where = safeOrigin(this.o.url);
    let last = '';
    let attempts = 0;
    for (let i = 0; i <= this.delays.length && !this.stop.signal.aborted; i++) {
      attempts++;
      try {
        const res = await this.fetchImpl(this.o.url, {
          method: 'POST',
          headers: signedHeaders(this.o.secret, body),
          body,
          // A redirect would re-send the signed body somewhere not configured.
          redirect: 'manual',
          signal: AbortSignal.any([this.stop.signal, AbortSignal.timeout(this.o.timeoutMs ?? 10_000)]),
        });
        await res.body?.cancel().catch(() => {});
        if (res.status >= 200 && res.status < 300) return true;
        last = `HTTP ${res.status}`;
        if (res.status < 500 && res.status !== 429) break; // the receiver refused it: retrying will not help
      } catch (e) {
        last = (e as Error).message;
      }
      if (i < this.delays.length) {
        try {
          await sleep(this.delays[i]!, undefined, { signal: this.stop.signal });
        } catch {
          break; // closing
        }
      }
    }
    if (this.stop.signal.aborted) return false; // shutting down: the record outlives us, nothing to report
    this.o.log('error', 'webhook delivery failed; the approval can still be decided in the console or CLI', {
      channel: this.name, approval_id: id, type: payload.type, url: where, attempts, err: last || 'closed',
    });
    return false;
  }
}

/** Only the origin goes to logs: webhook URLs often carry a token in the path or query. */
function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid url)';
  }
}

export interface WebhookResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const respond = (status: number, body: unknown): WebhookResponse => ({
  status,
  headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' },
  body: JSON.stringify(body),
});


/**
 * Signatures already used, until their timestamp leaves the window (then the skew check refuses
 * them anyway). In the state store when the decider has one (the engine always does: replays
 * after a restart or on another replica are refused); this map only for a decider without.
 */
const seen = new Map<string, number>();
const MAX_SEEN = 100_000;

async function firstUse(decider: ApprovalDecider, sig: string, nowMs: number): Promise<boolean> {
  const until = nowMs + 2 * MAX_SKEW_S * 1000;
  if (decider.claimOnce !== undefined) return decider.claimOnce(`webhook:${sig}`, until);
  if (seen.size > 1000) for (const [k, u] of seen) if (u <= nowMs) seen.delete(k);
  if (seen.has(sig)) return false;
  if (seen.size >= MAX_SEEN) seen.delete(seen.keys().next().value!);
  seen.set(sig, until);
  return true;
}

/**
 * A decision from the webhook's receiver: `{decision: 'approve'|'reject', by?, reason?, id?}`,
 * signed. Nothing is decided unless the signature is good and fresh. Senders should include
 * `id`: without it, two identical bodies signed in the same second are one signature. The vote
 * is cast as `identity` (the webhook's: `webhook:<workflow>`), whatever `by` says.
 */
export async function handleWebhookCallback(
  id: string, rawBody: Buffer, headers: Record<string, string>, decider: ApprovalDecider, secret: string, nowMs: number = Date.now(), identity?: string,
): Promise<WebhookResponse> {
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = v;
  const bad = verifyWebhookSignature(secret, lower, rawBody, nowMs);
  if (bad !== undefined) return respond(401, { error: 'unauthorized', message: 'missing, stale or invalid signature' });

  let body: unknown;
  try {
    body = JSON.parse(rawBody.toString('utf8'));
  } catch {
    return respond(400, { error: 'invalid_request', message: 'body is not JSON' });
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return respond(400, { error: 'invalid_request', message: 'body must be a JSON object' });
  const b = body as Record<string, unknown>;
  if (b.decision !== 'approve' && b.decision !== 'reject') return respond(400, { error: 'invalid_request', message: "decision must be 'approve' or 'reject'" });
  if (b.by !== undefined && (typeof b.by !== 'string' || b.by.trim() === '' || b.by.length > MAX_BY || CONTROL_RE.test(b.by))) {
    return respond(400, { error: 'invalid_request', message: `by must be a name of 1-${MAX_BY} printable characters` });
  }
  if (b.reason !== undefined && b.reason !== null && (typeof b.reason !== 'string' || b.reason.length > MAX_REASON)) {
    return respond(400, { error: 'invalid_request', message: `reason must be a string of at most ${MAX_REASON} characters` });
  }
  if (b.id !== undefined && b.id !== id) return respond(400, { error: 'invalid_request', message: 'id in the body does not match the URL' });
  if (!ID_RE.test(id)) return respond(404, { error: 'not_found', message: `no approval ${id}` });
  // With the id in the body the signature covers it; without, each signature may decide once.
  if (b.id === undefined && !(await firstUse(decider, lower[SIGNATURE_HEADER]!.toLowerCase(), nowMs))) {
    return respond(409, { error: 'replayed', message: 'this signed callback was already used; put "id" in the body (or sign each callback afresh)' });
  }

  let actor = identity;
  if (actor === undefined) {
    const rec = await decider.get(id);
    if (rec === undefined) return respond(404, { error: 'not_found', message: `no approval ${id}` });
    actor = `webhook:${rec.workflow}`;
  }
  const vote: Parameters<ApprovalDecider['decide']>[1] = { verdict: b.decision, by: actor };
  if (typeof b.reason === 'string' && b.reason.trim() !== '') vote.reason = b.reason.trim();
  const result = await decider.decide(id, vote);
  if (!result.ok) return respond(REFUSAL_STATUS[result.code], { error: result.code, message: result.message });
  return respond(200, { ok: true, state: result.rec.state });
}

/** `POST /approvals/<id>` on the inbound port. */
export function webhookRoute(opts: { decider: ApprovalDecider; secret: string }): AdminRoute {
  return async (req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<boolean> => {
    const m = /^\/approvals\/([^/]+)$/.exec(path);
    if (m === null) return false;
    if (req.method !== 'POST') {
      const r = respond(405, { error: 'method_not_allowed', message: 'use POST' });
      res.writeHead(r.status, { ...r.headers, allow: 'POST' });
      res.end(r.body);
      return true;
    }
    const raw = await readBody(req, CALLBACK_LIMIT);
    if (raw === 'too_large') {
      const r = respond(413, { error: 'too_large', message: `body over ${CALLBACK_LIMIT / 1024} KiB` });
      res.writeHead(r.status, { ...r.headers, connection: 'close' });
      res.end(r.body);
      return true;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    const r = await handleWebhookCallback(m[1]!, raw, headers, opts.decider, opts.secret);
    res.writeHead(r.status, r.headers);
    res.end(r.body);
    return true;
  };
}

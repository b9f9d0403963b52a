// Slack's interactive payloads (the Approve / Reject buttons). Slack signs each request with
// the app's signing secret (https://docs.slack.dev/authentication/verifying-requests-from-slack);
// anything unsigned, wrongly signed, replayed later than five minutes, or replayed at all (its
// signature is claimed in the state store) is refused before it is read. Slack wants a 200
// within 3 s, and a decision may run the approved call upstream, so the vote is handed to the
// engine and the answer does not wait for it.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ApprovalDecider } from '../types.js';
import { APPROVE_ACTION_ID, REJECT_ACTION_ID, slackRejectReason } from './slack-message.js';

/** Slack's replay window. */
const MAX_SKEW_SECONDS = 5 * 60;
const SIGNATURE_VERSION = 'v0';
const HEX_SHA256 = /^[0-9a-f]{64}$/;

export type SlackLog = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export interface SlackHttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Header lookup that tolerates any capitalisation (Node lower-cases; other servers may not). */
function header(headers: Record<string, string>, name: string): string | undefined {
  const direct = headers[name];
  if (direct !== undefined) return direct;
  for (const key of Object.keys(headers)) if (key.toLowerCase() === name) return headers[key];
  return undefined;
}

/**
 * True when `x-slack-signature` is `v0=` + hex HMAC-SHA256(signingSecret, `v0:<timestamp>:<body>`)
 * and `x-slack-request-timestamp` is within five minutes of `nowMs`.
 */
export function verifySlackSignature(rawBody: Buffer, headers: Record<string, string>, signingSecret: string, nowMs: number = Date.now()): boolean {
  if (signingSecret === '') return false; // misconfigured: accepting would let anyone decide
  const timestamp = header(headers, 'x-slack-request-timestamp');
  const signature = header(headers, 'x-slack-signature');
  if (timestamp === undefined || signature === undefined || !/^\d{1,12}$/.test(timestamp)) return false;
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > MAX_SKEW_SECONDS) return false;
  const prefix = SIGNATURE_VERSION + '=';
  if (!signature.startsWith(prefix) || !HEX_SHA256.test(signature.slice(prefix.length))) return false;
  const expected = createHmac('sha256', signingSecret)
    .update(`${SIGNATURE_VERSION}:${timestamp}:`)
    .update(rawBody)
    .digest();
  return timingSafeEqual(expected, Buffer.from(signature.slice(prefix.length), 'hex'));
}

const EMPTY_OK: SlackHttpAnswer = { status: 200, headers: {}, body: '' };

function refuse(status: number, body: string): SlackHttpAnswer {
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body };
}

interface BlockAction {
  verdict: 'approve' | 'reject';
  approvalId: string;
  userId: string;
}

/**
 * Answers Slack's POST to the app's Interactivity Request URL. 401 for a bad signature (nothing
 * decided), 400 for a payload that cannot be read, otherwise 200 with an empty body at once;
 * the vote goes to the engine, and a refused vote (not an approver, already decided) is logged.
 */
export async function handleSlackInteraction(
  rawBody: Buffer,
  headers: Record<string, string>,
  decider: ApprovalDecider,
  signingSecret: string,
  log?: SlackLog,
): Promise<SlackHttpAnswer> {
  const nowMs = Date.now();
  if (!verifySlackSignature(rawBody, headers, signingSecret, nowMs)) {
    log?.('warn', 'slack interaction refused: bad or stale signature');
    return refuse(401, 'invalid signature');
  }
  // A signed request is used once, also across restarts and replicas: its signature is claimed in
  // the state store until the replay window has closed for it on any clock within the skew.
  if (decider.claimOnce !== undefined) {
    const sig = header(headers, 'x-slack-signature')!.toLowerCase();
    if (!(await decider.claimOnce(`slack:${sig}`, nowMs + 2 * MAX_SKEW_SECONDS * 1000))) {
      log?.('warn', 'slack interaction refused: replayed');
      return refuse(409, 'replayed');
    }
  }
  let payload: unknown;
  try {
    const text = new URLSearchParams(rawBody.toString('utf8')).get('payload');
    if (text === null) return refuse(400, 'missing payload');
    payload = JSON.parse(text);
  } catch {
    return refuse(400, 'payload is not JSON');
  }
  if (typeof payload !== 'object' || payload === null) return refuse(400, 'payload is not an object');
  const p = payload as { type?: unknown };
  if (p.type !== 'block_actions') return EMPTY_OK; // shortcuts, view submissions…: not ours to answer
  const action = readBlockAction(payload as Record<string, unknown>);
  if (action === 'invalid') return refuse(400, 'block_actions payload without user or action');
  if (action === undefined) return EMPTY_OK; // another app's button in the same workspace
  const by = 'slack:' + action.userId;
  const vote = action.verdict === 'reject'
    ? { verdict: action.verdict, by, reason: slackRejectReason(action.userId) }
    : { verdict: action.verdict, by };
  decider.decide(action.approvalId, vote).then((r) => {
    if (r.ok) log?.('info', `slack: ${action.verdict} by ${action.userId} counted`, { approval_id: action.approvalId, final: r.final });
    else log?.('warn', `slack: ${action.verdict} by ${action.userId} refused: ${r.message}`, { approval_id: action.approvalId, code: r.code });
  }, (err: Error) => log?.('error', 'slack: could not record the decision', { approval_id: action.approvalId, err: err.message }));
  return EMPTY_OK;
}

/** Our button in a block_actions payload; 'invalid' when the payload lacks what Slack always sends. */
function readBlockAction(payload: Record<string, unknown>): BlockAction | 'invalid' | undefined {
  const user = payload.user as { id?: unknown } | undefined;
  const actions = payload.actions;
  if (typeof user?.id !== 'string' || user.id === '' || !Array.isArray(actions)) return 'invalid';
  for (const a of actions as { action_id?: unknown; value?: unknown }[]) {
    if (a === null || typeof a !== 'object') continue;
    const verdict = a.action_id === APPROVE_ACTION_ID ? 'approve' : a.action_id === REJECT_ACTION_ID ? 'reject' : undefined;
    if (verdict === undefined) continue;
    if (typeof a.value !== 'string' || a.value === '' || a.value.length > 64) return 'invalid';
    return { verdict, approvalId: a.value, userId: user.id };
  }
  return undefined;
}

// The Slack approval channel: posts a request per held call, learns decisions from 👍/👎
// reactions (polled) or from the Approve/Reject buttons (slack-signature.ts), and edits the
// message in place once the record is settled. It fixes the original's flaws: approver
// allow-lists, self-approval and duplicate votes are enforced (by the engine), skin tones
// count, polling keeps its pace instead of backing off to 30 s, Retry-After is honoured for
// all polling at once, and the message is updated on every outcome, including expiry.
import { WebClient, type Logger, LogLevel } from '@slack/web-api';
import type { ApprovalChannel, ApprovalDecider, ApprovalRecord } from '../types.js';
import { buildApprovalMessage, buildOutcomeMessage, slackRejectReason, type MessageOptions } from './slack-message.js';
import type { SlackLog } from './slack-signature.js';

export interface SlackChannelOptions {
  /** bot token (xoxb-…); never logged */
  token: string;
  /** default channel, e.g. '#approvals' */
  channel: string;
  /** Slack Web API base URL (tests point it at a fake); '/' is appended when missing */
  apiUrl?: string;
  /** how often each pending message's reactions are read (ms) */
  pollIntervalMs?: number;
  /** the web console, linked from every request message */
  consoleUrl?: string;
  /** the record's workflow's redact_fields */
  redactFields?: (rec: ApprovalRecord) => string[];
  /** the record's workflow's channel, when it overrides the default */
  channelFor?: (rec: ApprovalRecord) => string | undefined;
  log: SlackLog;
}

interface MessageRef {
  channel: string;
  ts: string;
}

type Verdict = 'approve' | 'reject';

const DEFAULT_POLL_INTERVAL_MS = 2000;
/** reactions.get is Tier 3 (~50/min): with many pending messages, calls are spaced at least this far apart. */
const MIN_CALL_GAP_MS = 1000;
/** a `ratelimited` body error carries no Retry-After of its own */
const DEFAULT_RATE_LIMIT_PAUSE_MS = 30_000;
/** chat.update of an outcome, when rate-limited, is tried this many times in all */
const UPDATE_ATTEMPTS = 3;

/** Errors that will not go away by asking again: that message is no longer polled. */
const NON_RETRIABLE = new Set(['channel_not_found', 'invalid_auth', 'token_revoked', 'account_inactive', 'not_authed', 'message_not_found']);

const RATE_LIMITED_CODE = 'slack_webapi_rate_limited_error';
const PLATFORM_ERROR_CODE = 'slack_webapi_platform_error';

/** `+1`, `thumbsup` and their skin tones (`+1::skin-tone-2` … `-6`); the same for 👎. */
export function reactionVerdict(name: string): Verdict | undefined {
  const sep = name.indexOf('::');
  const base = sep === -1 ? name : name.slice(0, sep);
  if (sep !== -1 && !/^skin-tone-[2-6]$/.test(name.slice(sep + 2))) return undefined;
  if (base === '+1' || base === 'thumbsup') return 'approve';
  if (base === '-1' || base === 'thumbsdown') return 'reject';
  return undefined;
}

/** What a Slack call failed with, as a short code that never carries the token. */
export function slackErrorCode(err: unknown): string {
  const e = err as { code?: unknown; data?: { error?: unknown }; statusCode?: unknown; original?: { code?: unknown } } | null;
  if (e === null || typeof e !== 'object') return 'unknown_error';
  if (e.code === PLATFORM_ERROR_CODE && typeof e.data?.error === 'string') return e.data.error;
  if (e.code === RATE_LIMITED_CODE) return 'rate_limited';
  if (typeof e.statusCode === 'number') return `http_${e.statusCode}`;
  if (typeof e.original?.code === 'string') return e.original.code; // network: ECONNREFUSED, …
  return typeof e.code === 'string' ? e.code : 'unknown_error';
}

export class SlackChannel implements ApprovalChannel {
  readonly name = 'slack';
  private readonly client: WebClient;
  private readonly o: SlackChannelOptions;
  private readonly pollIntervalMs: number;
  private readonly log: SlackLog;
  private decider: ApprovalDecider | undefined;
  private botUserId: string | undefined;
  /** auth.test answered, or failed in a way asking again will not fix */
  private botLookupDone = false;
  private botLookup: Promise<void> | undefined;
  /** records whose post is in flight, and those of them settled meanwhile (updated once posted) */
  private readonly posting = new Set<string>();
  private readonly settledWhilePosting = new Map<string, ApprovalRecord>();
  /** pending records' messages, in polling order (a polled entry moves to the back) */
  private readonly tracked = new Map<string, MessageRef>();
  /** `<record id> <user>` pairs already counted or refused: each is sent to the engine once */
  private readonly handled = new Set<string>();
  /** records whose reactions are being sent to the engine right now */
  private readonly deciding = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private pausedUntil = 0;
  /** the last polling error logged, so a failing Slack logs once rather than every tick */
  private lastPollError: string | undefined;
  private closed = false;

  constructor(options: SlackChannelOptions) {
    this.o = options;
    this.pollIntervalMs = Math.max(1, options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS);
    const token = options.token;
    // Belt and braces: nothing this channel logs may carry the token, whatever an error says.
    this.log = (level, msg, fields) => options.log(level, scrub(msg, token), fields === undefined ? undefined : scrubFields(fields, token));
    let apiUrl = options.apiUrl;
    if (apiUrl !== undefined && !apiUrl.endsWith('/')) apiUrl += '/';
    this.client = new WebClient(token, {
      ...(apiUrl !== undefined ? { slackApiUrl: apiUrl } : {}),
      retryConfig: { retries: 0 }, // we pace ourselves; the library's retries would hide 429s
      rejectRateLimitedCalls: true,
      timeout: 10_000,
      logger: libraryLogger(this.log),
    });
  }

  async start(decider: ApprovalDecider): Promise<void> {
    this.decider = decider;
    this.closed = false;
    // Not awaited: a slow or unreachable Slack must not hold up the sidecar's start; the poller waits for it.
    void this.ensureBotUser();
    // After a restart: keep polling what is still waiting for a reaction.
    const pending = await decider.list((r) => r.state === 'pending' && r.channel === this.name && typeof r.channelRef?.ts === 'string');
    for (const r of pending) this.track(r.id, { channel: r.channelRef!.channel ?? this.o.channel, ts: r.channelRef!.ts! });
    if (pending.length > 0) this.log('info', 'slack: polling reactions of pending approvals', { count: pending.length });
  }

  async post(rec: ApprovalRecord): Promise<Record<string, string>> {
    const channel = this.o.channelFor?.(rec) || this.o.channel;
    const msg = buildApprovalMessage(rec, this.messageOptions(rec));
    let res;
    this.posting.add(rec.id);
    try {
      res = await this.client.chat.postMessage({ channel, text: msg.text, blocks: msg.blocks, metadata: msg.metadata });
    } catch (e) {
      this.settledWhilePosting.delete(rec.id);
      throw new Error(`slack chat.postMessage to ${channel} failed: ${slackErrorCode(e)}`);
    } finally {
      this.posting.delete(rec.id);
    }
    if (typeof res.ts !== 'string') throw new Error('slack chat.postMessage returned no message ts');
    const ref: MessageRef = { channel: typeof res.channel === 'string' ? res.channel : channel, ts: res.ts };
    const settled = this.settledWhilePosting.get(rec.id);
    if (settled !== undefined) {
      // Decided (in the console, say) before Slack answered: the engine's update found no message to edit.
      this.settledWhilePosting.delete(rec.id);
      this.update({ ...settled, channelRef: { channel: ref.channel, ts: ref.ts } }).catch((e: Error) =>
        this.log('warn', 'slack: could not update a message settled while it was being posted', { approval_id: rec.id, err: e.message }));
    } else if (rec.state === 'pending') {
      this.track(rec.id, ref);
    }
    return { channel: ref.channel, ts: ref.ts };
  }

  async update(rec: ApprovalRecord): Promise<void> {
    // The engine may settle a record before it stored the reference post() returned.
    const stored = rec.channelRef;
    const ref = typeof stored?.ts === 'string' ? { channel: stored.channel ?? this.o.channel, ts: stored.ts } : this.tracked.get(rec.id);
    if (rec.state !== 'pending') this.untrack(rec.id);
    if (ref === undefined) {
      if (this.posting.has(rec.id)) this.settledWhilePosting.set(rec.id, rec);
      return;
    }
    const msg = buildOutcomeMessage(rec, this.messageOptions(rec));
    for (let attempt = 1; ; attempt++) {
      try {
        await this.client.chat.update({ channel: ref.channel, ts: ref.ts, text: msg.text, blocks: msg.blocks });
        return;
      } catch (e) {
        const wait = rateLimitPauseMs(e);
        if (wait === undefined || attempt >= UPDATE_ATTEMPTS || this.closed) {
          throw new Error(`slack chat.update of ${ref.ts} failed: ${slackErrorCode(e)}`);
        }
        await sleepUnref(wait);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.tracked.clear();
    this.handled.clear();
    this.settledWhilePosting.clear();
  }

  // --- polling ------------------------------------------------------------------------

  private messageOptions(rec: ApprovalRecord): MessageOptions {
    const o: MessageOptions = {};
    const fields = this.o.redactFields?.(rec);
    if (fields !== undefined) o.redactFields = fields;
    if (this.o.consoleUrl !== undefined) o.consoleUrl = this.o.consoleUrl;
    return o;
  }

  private ensureBotUser(): Promise<void> {
    if (this.botLookupDone) return Promise.resolve();
    this.botLookup ??= this.learnBotUser().finally(() => (this.botLookup = undefined));
    return this.botLookup;
  }

  /** The bot's own reactions never count; a failure here only means they are not filtered yet. */
  private async learnBotUser(): Promise<void> {
    try {
      const res = await this.client.auth.test();
      if (typeof res.user_id === 'string') this.botUserId = res.user_id;
      this.botLookupDone = true;
    } catch (e) {
      const code = slackErrorCode(e);
      this.pauseIfRateLimited(e);
      if (NON_RETRIABLE.has(code)) this.botLookupDone = true;
      if (code !== this.lastPollError) this.log('error', `slack: auth.test failed: ${code}`, { slack_error: code });
      this.lastPollError = code;
    }
  }

  private track(id: string, ref: MessageRef): void {
    if (this.closed) return;
    this.tracked.set(id, ref);
    this.schedule();
  }

  private untrack(id: string): void {
    if (!this.tracked.delete(id)) return;
    const prefix = id + ' ';
    for (const key of this.handled) if (key.startsWith(prefix)) this.handled.delete(key);
  }

  /** Every message is read once per interval, the calls spread over it rather than in a burst. */
  private gapMs(): number {
    const spread = this.pollIntervalMs / Math.max(1, this.tracked.size);
    return Math.max(spread, Math.min(this.pollIntervalMs, MIN_CALL_GAP_MS));
  }

  private schedule(): void {
    if (this.closed || this.polling || this.timer !== undefined || this.tracked.size === 0) return;
    const delay = Math.max(this.gapMs(), this.pausedUntil - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, delay);
    this.timer.unref(); // pending approvals must not keep the process alive
  }

  private async tick(): Promise<void> {
    if (this.closed || this.decider === undefined) return;
    this.polling = true;
    try {
      if (Date.now() >= this.pausedUntil) {
        await this.ensureBotUser();
        const next = this.tracked.entries().next();
        if (!next.done && Date.now() >= this.pausedUntil) {
          const [id, ref] = next.value;
          this.tracked.delete(id); // to the back of the line
          this.tracked.set(id, ref);
          if (!this.deciding.has(id)) await this.pollOne(id, ref, this.decider);
        }
      }
    } catch (e) {
      this.log('warn', 'slack: reaction polling failed', { err: (e as Error).message });
    } finally {
      this.polling = false;
      this.schedule();
    }
  }

  private async pollOne(id: string, ref: MessageRef, decider: ApprovalDecider): Promise<void> {
    // Another replica, the console or the CLI may have settled it: no Slack call for nothing.
    const rec = await decider.get(id);
    if (rec === undefined || rec.state !== 'pending') {
      this.untrack(id);
      return;
    }
    let res;
    try {
      res = await this.client.reactions.get({ channel: ref.channel, timestamp: ref.ts, full: true });
    } catch (e) {
      this.pollFailed(id, ref, e);
      return;
    }
    this.lastPollError = undefined;
    if (this.closed || !this.tracked.has(id)) return;
    const votes = this.newVotes(id, res.message?.reactions ?? []);
    if (votes.length === 0) return;
    // A final approval returns only once the call has run upstream: the other messages keep
    // being polled meanwhile, this one is skipped until its votes are in.
    this.deciding.add(id);
    void this.castVotes(id, votes, decider)
      .catch((e: Error) => this.log('warn', 'slack: could not record a reaction', { approval_id: id, err: e.message }))
      .finally(() => this.deciding.delete(id));
  }

  /** Reactions not yet sent to the engine, rejections first: when both arrive between two polls their order is unknown, and not running the call is the safe side. */
  private newVotes(id: string, reactions: readonly { name?: string; users?: string[] }[]): { user: string; verdict: Verdict }[] {
    const votes: { user: string; verdict: Verdict }[] = [];
    for (const wanted of ['reject', 'approve'] as const) {
      for (const r of reactions) {
        if (typeof r.name !== 'string' || reactionVerdict(r.name) !== wanted) continue;
        for (const user of r.users ?? []) {
          if (user !== this.botUserId && !this.handled.has(id + ' ' + user)) votes.push({ user, verdict: wanted });
        }
      }
    }
    return votes;
  }

  private async castVotes(id: string, votes: readonly { user: string; verdict: Verdict }[], decider: ApprovalDecider): Promise<void> {
    for (const v of votes) if (!(await this.vote(id, v.user, v.verdict, decider))) return;
  }

  /** Sends one reaction to the engine; false when the record is settled and polling it should stop. */
  private async vote(id: string, user: string, verdict: Verdict, decider: ApprovalDecider): Promise<boolean> {
    const key = id + ' ' + user;
    if (this.handled.has(key)) return true;
    this.handled.add(key);
    const res = await decider.decide(id, verdict === 'reject'
      ? { verdict, by: 'slack:' + user, reason: slackRejectReason(user) }
      : { verdict, by: 'slack:' + user });
    if (res.ok) {
      this.log('info', `slack: ${verdict} reaction from ${user} counted`, { approval_id: id, final: res.final });
      if (res.final) this.untrack(id);
      return !res.final;
    }
    switch (res.code) {
      case 'not_allowed':
        this.log('warn', `slack: ignored reaction from ${user}: not an approver`, { approval_id: id });
        return true;
      case 'self_approval':
        this.log('warn', `slack: ignored reaction from ${user}: the requester cannot decide its own call`, { approval_id: id });
        return true;
      case 'duplicate_vote':
        return true; // e.g. both 👍 and 👎 from one person: the first counted
      default: // already_decided, not_found
        this.untrack(id);
        return false;
    }
  }

  private pollFailed(id: string, ref: MessageRef, err: unknown): void {
    const code = slackErrorCode(err);
    if (this.pauseIfRateLimited(err)) return;
    if (NON_RETRIABLE.has(code)) {
      // The record stays pending: the console and the CLI can still decide it.
      this.untrack(id);
      this.log('warn', `slack: stopped polling reactions for approval ${id}: ${code}`, { approval_id: id, slack_error: code, channel: ref.channel, ts: ref.ts });
      return;
    }
    if (code !== this.lastPollError) this.log('warn', `slack: reactions.get failed: ${code}; will retry`, { approval_id: id, slack_error: code });
    this.lastPollError = code;
  }

  /** A 429 or a `ratelimited` answer pauses all polling until Slack's Retry-After has passed. */
  private pauseIfRateLimited(err: unknown): boolean {
    const wait = rateLimitPauseMs(err);
    if (wait === undefined) return false;
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + wait);
    this.log('warn', `slack: rate limited; polling paused for ${Math.ceil(wait / 1000)} s`, { retry_after_ms: wait });
    return true;
  }
}

/** How long Slack asked us to wait, or undefined when the error is not a rate limit. */
function rateLimitPauseMs(err: unknown): number | undefined {
  const e = err as { code?: unknown; retryAfter?: unknown; data?: { error?: unknown; response_metadata?: { retryAfter?: unknown } } } | null;
  if (e === null || typeof e !== 'object') return undefined;
  if (e.code === RATE_LIMITED_CODE) return typeof e.retryAfter === 'number' && e.retryAfter >= 0 ? e.retryAfter * 1000 : DEFAULT_RATE_LIMIT_PAUSE_MS;
  if (e.code === PLATFORM_ERROR_CODE && e.data?.error === 'ratelimited') {
    const after = e.data.response_metadata?.retryAfter;
    return typeof after === 'number' && after >= 0 ? after * 1000 : DEFAULT_RATE_LIMIT_PAUSE_MS;
  }
  return undefined;
}

function sleepUnref(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function scrub(text: string, token: string): string {
  return token.length >= 8 && text.includes(token) ? text.split(token).join('[REDACTED]') : text;
}

function scrubFields(fields: Record<string, unknown>, token: string): Record<string, unknown> {
  if (token.length < 8) return fields; // too short to be a real token; replacing it would garble logs
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(fields)) {
    if (typeof v !== 'string' || !v.includes(token)) continue;
    out ??= { ...fields };
    out[k] = scrub(v, token);
  }
  return out ?? fields;
}

/** The library's own logging: its warnings and errors reach ours (scrubbed), its chatter does not. */
function libraryLogger(log: SlackLog): Logger {
  const forward = (level: 'warn' | 'error') => (...msg: unknown[]) => log(level, 'slack client: ' + msg.map((m) => (typeof m === 'string' ? m : safeJson(m))).join(' '));
  return {
    debug: () => {},
    info: () => {},
    warn: forward('warn'),
    error: forward('error'),
    setLevel: () => {},
    getLevel: () => LogLevel.WARN,
    setName: () => {},
  };
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

// The Slack approval message as Block Kit: pure functions from an approval record to what
// chat.postMessage / chat.update send. Arguments come from the agent, so they are untrusted:
// secrets are masked, mrkdwn control characters escaped (no `<!channel>` or fake mentions) and
// the text bounded so the message always fits Slack's block limits.
import type { KnownBlock, MessageMetadata } from '@slack/web-api';
import type { ApprovalRecord, Vote } from '../types.js';

export const APPROVE_ACTION_ID = 'tg_approve';
export const REJECT_ACTION_ID = 'tg_reject';
export const METADATA_EVENT_TYPE = 'thoughtgate_approval';
export const TRUNCATED_MARKER = '… (truncated)';
/** Longest argument text shown; a section's text may hold 3,000 characters. */
export const MAX_ARGUMENTS_CHARS = 2500;

// Slack's limits (https://docs.slack.dev/reference/block-kit/blocks): header text 150, section
// text 3,000, a section field 2,000, a context element 2,000 (we stay far below the last two).
const MAX_HEADER_CHARS = 150;
const MAX_FIELD_CHARS = 300;
const MAX_REASON_CHARS = 500;
const MAX_FALLBACK_CHARS = 300;

const AUTO_APPROVER = 'system:auto-approve';

export interface MessageOptions {
  /** the workflow's redact_fields: dotted paths (`auth.token`) */
  redactFields?: readonly string[];
  /** the web console, linked from the message when set */
  consoleUrl?: string;
}

export interface SlackMessage {
  /** the notification / screen-reader fallback Slack shows where blocks cannot be */
  text: string;
  blocks: KnownBlock[];
}

export interface SlackRequestMessage extends SlackMessage {
  metadata: MessageMetadata;
}

// Masking lives in ../redact.ts (every surface that shows a request uses it); re-exported for the message's users.
export { maskArguments, maskSecretValues, REDACTED } from '../redact.js';
import { maskArguments } from '../redact.js';

// --- text helpers -----------------------------------------------------------------------

/** Slack's mrkdwn needs only these three escaped; doing so also defeats `<!here>` and `<@U…>` injection. */
export function escapeMrkdwn(s: string): string {
  return s.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

/** Cuts `s` to at most `max` characters (marker included), never inside an entity or a surrogate pair. */
export function truncate(s: string, max: number, marker = TRUNCATED_MARKER): string {
  if (s.length <= max) return s;
  let end = Math.max(0, max - marker.length);
  const amp = s.lastIndexOf('&', end - 1);
  if (amp !== -1 && amp >= end - 5 && s.indexOf(';', amp) >= end) end = amp; // would split `&amp;`
  const code = s.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--; // high surrogate without its pair
  return s.slice(0, end) + marker;
}

/** The arguments as they appear in the message: masked, pretty JSON, escaped and bounded. */
export function formatArguments(args: unknown, redactFields: readonly string[] = [], maxChars = MAX_ARGUMENTS_CHARS): string {
  const json = JSON.stringify(maskArguments(args ?? {}, redactFields), null, 2) ?? 'null';
  // JSON allows a backtick only inside strings, where \u0060 means the same: no ``` can end the code block early.
  return truncate(escapeMrkdwn(json.replace(/`/g, '\\u0060')), maxChars);
}

/** `YYYY-MM-DD HH:MM UTC`, as the original showed expiry. */
export function formatUtc(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

/** The reason recorded when someone rejects in Slack (button or reaction). */
export function slackRejectReason(userId: string): string {
  return `rejected in Slack by <@${userId}>`;
}

/** Slack ids are upper-case alphanumerics; `_` is allowed for readable test ids. Nothing that could close a mention. */
const SLACK_USER_ID = /^[A-Za-z0-9_]+$/;

/** Who decided, as Slack shows it: a mention for Slack users, the plain name for everyone else. */
export function describeActor(by: string): string {
  if (by === AUTO_APPROVER) return 'automatically (on_timeout: approve)';
  const colon = by.indexOf(':');
  const kind = colon === -1 ? '' : by.slice(0, colon);
  const who = colon === -1 ? by : by.slice(colon + 1);
  if (kind === 'slack' && SLACK_USER_ID.test(who)) return `<@${who}>`;
  return escapeMrkdwn(truncate(who, MAX_FIELD_CHARS, '…'));
}

function plain(text: string): { type: 'plain_text'; text: string; emoji: true } {
  return { type: 'plain_text', text, emoji: true };
}

function mrkdwn(text: string): { type: 'mrkdwn'; text: string } {
  return { type: 'mrkdwn', text };
}

// --- the request ------------------------------------------------------------------------

/** What the request and its outcome share: who asks to run what, with which arguments. */
function requestBlocks(rec: ApprovalRecord, headerPrefix: string, opts: MessageOptions): KnownBlock[] {
  return [
    { type: 'header', text: plain(truncate(headerPrefix + rec.tool, MAX_HEADER_CHARS, '…')) },
    {
      type: 'section',
      fields: [
        // Inline code cannot hold a backtick; the tool name is shown without it rather than broken.
        mrkdwn(`*Tool:*\n\`${escapeMrkdwn(truncate(rec.tool.replace(/`/g, "'"), MAX_FIELD_CHARS, '…'))}\``),
        mrkdwn(`*Principal:*\n${escapeMrkdwn(truncate(rec.principal, MAX_FIELD_CHARS, '…'))}`),
      ],
    },
    { type: 'section', text: mrkdwn('*Arguments:*\n```\n' + formatArguments(rec.arguments, opts.redactFields ?? []) + '\n```') },
  ];
}

function taskLine(rec: ApprovalRecord): string {
  let line = `Task ID: ${rec.id} • Expires: ${formatUtc(rec.expiresAt)}`;
  if (rec.requiredApprovals > 1) line += ` • Needs ${rec.requiredApprovals} approvals`;
  return line;
}

/** The message that asks for a decision (chat.postMessage). */
export function buildApprovalMessage(rec: ApprovalRecord, opts: MessageOptions = {}): SlackRequestMessage {
  const blocks = requestBlocks(rec, '🔒 Approval Required: ', opts);
  blocks.push({
    type: 'actions',
    block_id: 'tg_decision',
    elements: [
      { type: 'button', action_id: APPROVE_ACTION_ID, text: plain('Approve'), style: 'primary', value: rec.id },
      { type: 'button', action_id: REJECT_ACTION_ID, text: plain('Reject'), style: 'danger', value: rec.id },
    ],
  });
  let hint = 'React with 👍 to approve or 👎 to reject';
  if (opts.consoleUrl) hint += ` • <${consoleLink(opts.consoleUrl)}|Open in the console>`;
  blocks.push({ type: 'context', elements: [mrkdwn(hint)] });
  if (rec.votes.length > 0) blocks.push({ type: 'context', elements: [mrkdwn(progressLine(rec))] });
  blocks.push({ type: 'context', elements: [mrkdwn(taskLine(rec))] });
  return {
    // Slack parses the fallback as mrkdwn too, so it is escaped like the blocks.
    text: escapeMrkdwn(truncate(`🔒 Approval required: ${rec.tool} requested by ${rec.principal} (task ${rec.id})`, MAX_FALLBACK_CHARS, '…')),
    blocks,
    metadata: { event_type: METADATA_EVENT_TYPE, event_payload: { task_id: rec.id } },
  };
}

/** A link is `<url|label>`: the URL must not carry `|` or `>`, which would end it early. */
function consoleLink(url: string): string {
  return url.replace(/&/g, '&amp;').replace(/[|<>]/g, encodeURIComponent);
}

// --- the outcome ------------------------------------------------------------------------

/** The same message once decided: what happened and who decided, without buttons. */
export function buildOutcomeMessage(rec: ApprovalRecord, opts: MessageOptions = {}): SlackMessage {
  if (rec.state === 'pending') return buildApprovalMessage(rec, opts);
  const { header, status } = outcome(rec);
  const blocks = requestBlocks(rec, header, opts);
  blocks.push({ type: 'section', text: mrkdwn(status) });
  const votes = votesLine(rec.votes);
  if (votes !== undefined) blocks.push({ type: 'context', elements: [mrkdwn(votes)] });
  blocks.push({ type: 'context', elements: [mrkdwn(`Task ID: ${rec.id}`)] });
  return { text: escapeMrkdwn(truncate(`${header}${rec.tool} (task ${rec.id})`, MAX_FALLBACK_CHARS, '…')), blocks };
}

function outcome(rec: ApprovalRecord): { header: string; status: string } {
  switch (rec.state) {
    case 'approved':
    case 'executing':
    case 'completed':
    case 'failed': {
      const by = rec.decidedBy === AUTO_APPROVER ? AUTO_APPROVER : approversOf(rec);
      const after = rec.state === 'completed' ? ' — executed' : rec.state === 'failed' ? ' — execution failed' : '';
      const who = by === AUTO_APPROVER ? describeActor(by) : `by ${by}`;
      return { header: '✅ Approved: ', status: `✅ *Approved* ${who}${after}` };
    }
    case 'rejected': {
      const by = rec.decidedBy ?? 'unknown';
      let status = `❌ *Rejected* by ${describeActor(by)}`;
      const reason = rec.reason;
      // The reason Slack records for itself would only repeat who rejected.
      if (reason && !(by.startsWith('slack:') && reason === slackRejectReason(by.slice(6)))) {
        status += `: ${escapeMrkdwn(truncate(reason, MAX_REASON_CHARS, '…'))}`;
      }
      return { header: '❌ Rejected: ', status };
    }
    case 'expired':
      return { header: '⌛ Expired: ', status: '⌛ *Expired*: timed out, not executed' };
    case 'cancelled':
      return { header: '🚫 Cancelled: ', status: `🚫 *Cancelled*${rec.decidedBy ? ` by ${describeActor(rec.decidedBy)}` : ''}, not executed` };
    default:
      return { header: 'Approval: ', status: `State: ${escapeMrkdwn(String(rec.state))}` };
  }
}

/** The approvers of an approved record, from its votes (decidedBy joins them with ", "). */
function approversOf(rec: ApprovalRecord): string {
  const approvers = rec.votes.filter((v) => v.verdict === 'approve').map((v) => describeActor(v.by));
  if (approvers.length > 0) return approvers.join(', ');
  return rec.decidedBy ? rec.decidedBy.split(', ').map(describeActor).join(', ') : 'unknown';
}

/** While more approvals are needed: "Approvals: 1 of 2 (<@U1>)". */
function progressLine(rec: ApprovalRecord): string {
  const approvers = rec.votes.filter((v) => v.verdict === 'approve').map((v) => describeActor(v.by));
  return `Approvals: ${approvers.length} of ${rec.requiredApprovals}${approvers.length > 0 ? ` (${approvers.join(', ')})` : ''}`;
}

/** "Votes: <@U1> approved, bob rejected", when more than one person voted. */
function votesLine(votes: readonly Vote[]): string | undefined {
  if (votes.length < 2) return undefined;
  return 'Votes: ' + votes.map((v) => `${describeActor(v.by)} ${v.verdict === 'approve' ? 'approved' : 'rejected'}`).join(', ');
}

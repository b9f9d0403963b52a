// A hostile upstream, generated (issue 14, item 7): list answers as a JSON body or as SSE
// events, split at arbitrary bytes, with deep nesting, invalid UTF-8, oversize events, duplicate
// keys, wrong or repeated ids and garbage. Whatever arrives, the invariants hold: nothing
// escapes the Relay (the process lives), a hidden name never reaches the client, the exchange
// is reported done exactly once and ends cleanly, and what the client gets is well-formed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { errorResponse } from '../core/errors.js';
import type { Exchange } from '../transport/http-server.js';
import { Relay, type RelayContext } from './relay.js';

const HIDDEN = 'secret_dump';
const MAX_DEPTH = 16;
const MAX_EVENT = 4096;

class FakeExchange {
  out: Buffer[] = [];
  headSent = false;
  finished = false;
  closed = false;
  aborted = false;
  onDrain: (() => void) | null = null;
  onAbort: (() => void) | null = null;
  respond(_s: number, _h: unknown, body: string | Buffer): void {
    if (this.finished) return;
    this.finished = true;
    this.out.push(Buffer.from(body));
  }
  writeHead(): void {
    this.headSent = true;
  }
  write(chunk: string | Buffer): boolean {
    if (!this.finished) this.out.push(Buffer.from(chunk));
    return true;
  }
  end(chunk?: string | Buffer): void {
    if (this.finished) return;
    if (chunk !== undefined) this.out.push(Buffer.from(chunk));
    this.finished = true;
  }
  close(): void {
    this.finished = true;
    this.closed = true;
  }
}

/** gate 1 on answers, as the pipeline's inspect does it: hidden tools vanish */
function inspect(message: unknown): string | undefined {
  const tools = (message as { result?: { tools?: unknown } } | null)?.result?.tools;
  if (!Array.isArray(tools)) return undefined;
  const kept = tools.filter((t) => (t as { name?: unknown } | null)?.name !== HIDDEN);
  if (kept.length === tools.length) return undefined;
  (message as { result: { tools: unknown[] } }).result.tools = kept;
  return JSON.stringify(message);
}

const nest = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;

/** one list answer, with its hostile twist; may be invalid JSON/UTF-8 on purpose */
const answer = fc.record({
  id: fc.oneof(fc.constant(7), fc.integer({ min: 0, max: 9 }), fc.constant('7')),
  depth: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 40 }), fc.constant(100_000)),
  twist: fc.constantFrom('none', 'dup-key', 'bad-utf8', 'huge', 'truncated', 'garbage', 'escaped-key'),
}).map(({ id, depth, twist }) => {
  const tools = `[{"name":"${HIDDEN}","inputSchema":{"type":"object"}},{"name":"echo","inputSchema":{"default":${nest(depth)}}}]`;
  let text = `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":{"tools":${tools}}}`;
  if (twist === 'dup-key') text = `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":{"tools":${tools},"tools":[]}}`;
  if (twist === 'escaped-key') text = `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":{"\\u0074ools":${tools}}}`;
  if (twist === 'huge') text = text.replace('"type":"object"', `"type":"object","pad":"${'x'.repeat(MAX_EVENT * 2)}"`);
  if (twist === 'truncated') text = text.slice(0, text.length >> 1);
  if (twist === 'garbage') text = `<html>${HIDDEN}</html>`;
  let bytes = Buffer.from(text);
  if (twist === 'bad-utf8') bytes = Buffer.concat([bytes.subarray(0, 30), Buffer.from([0xc3, 0x28, 0xff]), bytes.subarray(30)]);
  return bytes;
});

/** cut `bytes` into chunks at the given (sorted, deduplicated) offsets */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of at) {
    out.push(bytes.subarray(prev, c));
    prev = c;
  }
  out.push(bytes.subarray(prev));
  return out;
}

function run(sse: boolean, body: Buffer, cuts: number[]): void {
  const ex = new FakeExchange();
  let done = 0;
  const ctx: RelayContext = {
    correlationId: 'fuzz', expectsAnswer: true, inspectAll: true, scan: false, maxEventBytes: MAX_EVENT * (sse ? 1 : 64), maxDepth: MAX_DEPTH,
    inspect, renderError: (err) => errorResponse(7, err, 'fuzz'), onDone: () => { done++; },
  };
  const relay = new Relay(ex as unknown as Exchange, ctx);
  relay.abort = () => {};
  relay.onHead(200, { 'content-type': sse ? 'text/event-stream' : 'application/json' });
  for (const c of split(body, cuts)) relay.onData(c);
  relay.onEnd();
  const text = Buffer.concat(ex.out).toString('utf8');
  assert.equal(done, 1, 'reported done exactly once');
  assert.ok(ex.finished && !ex.closed, 'ended cleanly (no reset)');
  assert.ok(!text.includes(HIDDEN), `the hidden tool reached the client: ${text.slice(0, 200)}`);
  const messages = sse
    ? text.split('\n\n').filter((e) => e.trim()).map((e) => JSON.parse(e.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n')))
    : [JSON.parse(text)];
  assert.ok(messages.length >= 1, 'the request got an answer');
  for (const m of messages) assert.equal(m.jsonrpc, '2.0');
}

describe('Relay against a hostile upstream', () => {
  it('a JSON body, split anywhere', () => {
    fc.assert(fc.property(answer, fc.array(fc.nat(), { maxLength: 6 }), (body, cuts) => run(false, body, cuts)), { numRuns: 300 });
  });

  it('SSE events (a notification, then answers), split anywhere', () => {
    const stream = fc.array(answer, { minLength: 1, maxLength: 3 }).map((answers) => Buffer.concat([
      Buffer.from('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"data":"working"}}\n\n'),
      ...answers.flatMap((a) => [Buffer.from('event: message\ndata: '), a, Buffer.from('\n\n')]),
    ]));
    fc.assert(fc.property(stream, fc.array(fc.nat(), { maxLength: 8 }), (body, cuts) => run(true, body, cuts)), { numRuns: 300 });
  });
});

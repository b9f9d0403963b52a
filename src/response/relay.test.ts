// The Relay is driven by upstream code (sockets, undici, child processes) where nothing catches:
// an exception inside it must answer the request -32603 and be reported once, never escape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GovError, errorResponse } from '../core/errors.js';
import type { Exchange } from '../transport/http-server.js';
import { Relay, type RelayContext } from './relay.js';

class FakeExchange {
  out: string[] = [];
  status = 0;
  headSent = false;
  finished = false;
  closed = false;
  aborted = false;
  onDrain: (() => void) | null = null;
  onAbort: (() => void) | null = null;
  respond(status: number, _h: unknown, body: string | Buffer): void {
    if (this.finished) return;
    this.finished = true;
    this.status = status;
    this.out.push(String(body));
  }
  writeHead(status: number): void {
    this.headSent = true;
    this.status = status;
  }
  write(chunk: string | Buffer): boolean {
    if (!this.finished) this.out.push(String(chunk));
    return true;
  }
  end(chunk?: string | Buffer): void {
    if (this.finished) return;
    if (chunk !== undefined) this.out.push(String(chunk));
    this.finished = true;
  }
  close(): void {
    this.finished = true;
    this.closed = true;
  }
}

function setup(over: Partial<RelayContext> = {}) {
  const ex = new FakeExchange();
  const done: (GovError | undefined)[] = [];
  let aborted = 0;
  const ctx: RelayContext = {
    correlationId: 'corr-1', expectsAnswer: true, inspectAll: true, scan: false, maxEventBytes: 1 << 20, maxDepth: 64,
    inspect: () => { throw new TypeError('a bug in inspection'); },
    renderError: (err) => errorResponse(7, err, 'corr-1'),
    onDone: (_s, err) => { done.push(err); },
    ...over,
  };
  const relay = new Relay(ex as unknown as Exchange, ctx);
  relay.abort = () => { aborted++; };
  return { ex, relay, done, aborted: () => aborted };
}

test('an exception while inspecting a JSON answer becomes -32603 with the correlation id; nothing escapes', () => {
  const { ex, relay, done, aborted } = setup();
  relay.onHead(200, { 'content-type': 'application/json' });
  relay.onData(Buffer.from('{"jsonrpc":"2.0","id":7,"result":{"tools":[]}}'));
  assert.doesNotThrow(() => relay.onEnd());
  const body = JSON.parse(ex.out.join(''));
  assert.equal(body.id, 7);
  assert.equal(body.error.code, -32603);
  assert.equal(body.error.data.correlation_id, 'corr-1');
  assert.equal(body.error.data.error_type, 'internal_error');
  assert.deepEqual(done.map((e) => e?.kind), ['internal_error'], 'reported once, as internal_error');
  assert.equal(aborted(), 1, 'the upstream is told to stop');
});

test('an exception inside an SSE stream ends it with an error event for the request, not a reset', () => {
  const { ex, relay, done } = setup();
  relay.onHead(200, { 'content-type': 'text/event-stream' });
  assert.doesNotThrow(() => relay.onData(Buffer.from('event: message\ndata: {"jsonrpc":"2.0","id":7,"result":{"tools":[]}}\n\n')));
  assert.equal(ex.closed, false);
  assert.equal(ex.finished, true);
  const text = ex.out.join('');
  assert.match(text, /^event: message\ndata: \{"jsonrpc":"2.0","id":7,"error":\{"code":-32603/);
  assert.deepEqual(done.map((e) => e?.kind), ['internal_error']);
  relay.onData(Buffer.from('event: message\ndata: {"more":1}\n\n'));
  relay.onEnd();
  assert.equal(done.length, 1, 'later upstream callbacks do not report again');
});

test('a list answer deeper than maxDepth is refused (-32002), never relayed unfiltered', () => {
  const inspected: unknown[] = [];
  const { ex, relay, done } = setup({ maxDepth: 8, inspect: (m) => { inspected.push(m); return undefined; } });
  relay.onHead(200, { 'content-type': 'application/json' });
  relay.onData(Buffer.from(`{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"secret","x":${'['.repeat(20)}${']'.repeat(20)}}]}}`));
  relay.onEnd();
  const text = ex.out.join('');
  assert.ok(!text.includes('secret'));
  assert.equal(JSON.parse(text).error.code, -32002);
  assert.equal(inspected.length, 0, 'never parsed for inspection');
  assert.equal(done[0]?.kind, 'upstream_error');
});

test('an upstream failure mid-SSE-stream ends it with the error as an event, then a clean end', () => {
  const { ex, relay, done } = setup({ inspectAll: false, inspect: () => undefined });
  relay.onHead(200, { 'content-type': 'text/event-stream' });
  relay.onData(Buffer.from('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\n\n'));
  relay.onError(new GovError('upstream_timeout', { details: 'slow' }));
  assert.equal(ex.closed, false);
  const events = ex.out.join('').split('\n\n').filter(Boolean);
  assert.equal(events.length, 2);
  assert.match(events[1]!, /"id":7,"error":\{"code":-32001/);
  assert.equal(done[0]?.kind, 'upstream_timeout');
});

test('an answer stream that ends before its answer: resumable (an event id was given, SEP-1699) ends cleanly; without ids -32002', () => {
  for (const [priming, resumable] of [['id: ev-1\nretry: 500\ndata: \n\n', true], ['retry: 500\ndata: \n\n', false], [': comment\n\n', false], ['id: \ndata: \n\n', false]] as const) {
    const { ex, relay, done } = setup({ id: 7, inspectAll: false, inspect: () => undefined });
    relay.onHead(200, { 'content-type': 'text/event-stream' });
    relay.onData(Buffer.from(priming));
    relay.onEnd();
    const text = ex.out.join('');
    assert.equal(text.includes('"error"'), !resumable, `${JSON.stringify(priming)}: ${text}`);
    assert.ok(text.startsWith(priming), 'the priming event is relayed as sent');
    assert.equal(ex.finished, true);
    assert.equal(done[0]?.kind, resumable ? undefined : 'upstream_error');
  }
});

// Pipeline.handle is the containment the traffic port calls: an exception anywhere on the
// synchronous path (here: the snapshot itself fails) answers that exchange -32603 with the
// correlation id, is counted as internal_error, and nothing escapes to uWS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIMITS } from '../core/limits.js';
import { Pipeline, type PipelineOptions } from '../pipeline.js';
import { SessionTable } from '../session/sessions.js';
import type { Exchange } from './http-server.js';

function fakeExchange(body: string) {
  return {
    method: 'POST', path: '/mcp', headers: { 'content-type': 'application/json' } as Record<string, string>,
    body: Buffer.from(body), overLimit: false, aborted: false, finished: false, headSent: false,
    onDrain: null, onAbort: null,
    answers: [] as { status: number; body: string }[],
    respond(status: number, _h: unknown, b: string | Buffer) {
      if (this.finished) return;
      this.finished = true;
      this.answers.push({ status, body: String(b) });
    },
    writeHead() {}, write() { return true; }, end() { this.finished = true; }, close() { this.finished = true; },
  };
}

test('an exception inside the pipeline answers -32603 with the correlation id and counts internal_error', () => {
  const errors: string[] = [];
  const opts = {
    snapshot: () => { throw new TypeError("Cannot read properties of undefined (reading 'kind')"); },
    mode: 'enforce', limits: DEFAULT_LIMITS, upstream: { target: 'x', send: () => {}, close: async () => {} },
    sessions: new SessionTable(10, 60_000), origin: () => true,
    principal: { id: 'p', namespace: 'n', serviceAccount: 's', roles: [] },
    telemetry: { decision() {}, request() {}, error: (kind: string) => { errors.push(kind); }, framing() {}, upstream() {} },
    maxEventBytes: 1 << 20, draining: () => false, decisionApi: {},
  } as unknown as PipelineOptions;
  const pipeline = new Pipeline(opts);
  const ex = fakeExchange('{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}');
  assert.doesNotThrow(() => pipeline.handle(ex as unknown as Exchange));
  assert.equal(ex.answers.length, 1);
  const body = JSON.parse(ex.answers[0]!.body) as { error: { code: number; message: string; data: { correlation_id: string; error_type: string } } };
  assert.equal(body.error.code, -32603);
  assert.equal(body.error.data.error_type, 'internal_error');
  assert.ok(body.error.message.includes(body.error.data.correlation_id), 'the message names the reference');
  assert.deepEqual(errors, ['internal_error']);
});

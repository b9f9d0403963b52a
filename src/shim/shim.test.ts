// The shim's relay logic against a real (tiny) server process and a scripted governance
// service: ordering, holds, framing answers, failures by profile, list filtering, lifecycle.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { EventsReport, JudgeAnswer, JudgeRequest, WaitAnswer } from '../wrap/protocol.js';
import { GovernanceUnavailable, type GovernanceApi } from './governance-client.js';
import { runShim, type ShimOptions } from './shim.js';
import { parseShimArgs, ShimUsageError } from './command.js';
import { isProcessAlive } from '../core/durable-fs.js';

const MINI = fileURLToPath(new URL('../../test/support/mini-server.mjs', import.meta.url));
type Msg = { jsonrpc?: string; id?: unknown; method?: string; params?: any; result?: any; error?: any };

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** A governance service the test scripts call by call. */
class ScriptedGovernance implements GovernanceApi {
  judged: JudgeRequest['message'][] = [];
  reports: Omit<EventsReport, 'serverId'>[] = [];
  filtered: string[] = [];
  healthy = true;
  closed = false;
  onJudge: (m: JudgeRequest['message']) => Promise<JudgeAnswer> = async () => ({ action: 'forward' });
  onWait: (approvalId: string) => Promise<WaitAnswer> = () => new Promise(() => {});
  onFilter: (method: string, m: Record<string, unknown>) => Promise<Record<string, unknown> | undefined> = async () => undefined;
  onEvents: (r: Omit<EventsReport, 'serverId'>) => Promise<void> = async () => {};
  async health(): Promise<void> {
    if (!this.healthy) throw new GovernanceUnavailable('connect ECONNREFUSED');
  }
  judge(m: JudgeRequest['message']): Promise<JudgeAnswer> {
    this.judged.push(m);
    return this.onJudge(m);
  }
  wait(approvalId: string): Promise<WaitAnswer> {
    return this.onWait(approvalId);
  }
  filter(method: string, m: Record<string, unknown>): Promise<Record<string, unknown> | undefined> {
    this.filtered.push(method);
    return this.onFilter(method, m);
  }
  async events(r: Omit<EventsReport, 'serverId'>): Promise<void> {
    await this.onEvents(r);
    if (r.messages.length > 0 || r.framing.length > 0) this.reports.push(r);
  }
  close(): void {
    this.closed = true;
  }
  total(kind: 'messages' | 'framing', key: string): number {
    let n = 0;
    for (const r of this.reports) {
      if (kind === 'messages') for (const m of r.messages) n += `${m.direction} ${m.method}` === key ? m.count : 0;
      else for (const f of r.framing) n += `${f.direction} ${f.errorType}` === key ? f.count : 0;
    }
    return n;
  }
}

interface Harness {
  gov: ScriptedGovernance;
  record: string;
  pidFile: string;
  stdin: PassThrough;
  messages: Msg[];
  rawOut: () => string;
  errText: () => string;
  logs: { level: string; msg: string; fields?: Record<string, unknown> }[];
  done: Promise<number>;
  send: (m: Msg | string) => void;
  until: (pred: (msgs: Msg[]) => boolean, what: string) => Promise<void>;
  response: (id: unknown) => Promise<Msg>;
  /** lines the server received, parsed */
  received: () => Msg[];
}

/** Shims still running: a failed test must not leave them (and their servers) behind. */
const running = new Set<PassThrough>();
after(() => {
  for (const s of running) s.end();
});

function start(over: Partial<ShimOptions> = {}, serverEnv: Record<string, string> = {}, gov = new ScriptedGovernance()): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'tg-shim-'));
  const record = join(dir, 'received.ndjson');
  const pidFile = join(dir, 'pid');
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  const messages: Msg[] = [];
  const waiters = new Set<() => void>();
  stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const parts = out.split('\n');
    out = parts.pop()!;
    for (const p of parts) messages.push(JSON.parse(p));
    allOut += parts.join('\n') + '\n';
    for (const w of waiters) w();
  });
  let allOut = '';
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const logs: Harness['logs'] = [];
  const done = runShim({
    serverId: 'mini', governanceUrl: 'http://127.0.0.1:9', token: 'tok', profile: 'production',
    command: [process.execPath, MINI], stdin, stdout, stderr,
    env: { ...process.env, MINI_RECORD: record, MINI_PID_FILE: pidFile, ...serverEnv },
    log: (level, msg, fields) => logs.push({ level, msg, ...(fields ? { fields } : {}) }),
    governance: gov, graceMs: 300, healthTries: 1, eventsIntervalMs: 60_000,
    ...over,
  });
  const until = (pred: (m: Msg[]) => boolean, what: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (pred(messages)) {
          waiters.delete(check);
          clearInterval(tick);
          clearTimeout(timer);
          resolve();
        }
      };
      // things the shim does without writing (e.g. polling) are checked every few ms too
      const tick = setInterval(check, 10);
      const timer = setTimeout(() => {
        waiters.delete(check);
        clearInterval(tick);
        reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(messages).slice(0, 2000)}`));
      }, 10_000);
      waiters.add(check);
      check();
    });
  running.add(stdin);
  void done.finally(() => running.delete(stdin));
  return {
    gov, record, pidFile, stdin, messages, logs, done,
    rawOut: () => allOut,
    errText: () => err,
    send: (m) => stdin.write((typeof m === 'string' ? m : JSON.stringify(m)) + '\n'),
    until,
    response: async (id) => {
      const isIt = (m: Msg): boolean => m.method === undefined && m.id === id;
      await until((ms) => ms.some(isIt), `the response to ${JSON.stringify(id)}`);
      return messages.find(isIt)!;
    },
    received: () => (existsSync(record) ? readFileSync(record, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Msg) : []),
  };
}

const call = (id: number | string, name: string, extra: Record<string, unknown> = {}): Msg => ({
  jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: { text: String(id) }, ...extra },
});
const ping = (id: number | string): Msg => ({ jsonrpc: '2.0', id, method: 'ping' });
const receivedIds = (h: Harness): unknown[] => h.received().filter((m) => m.method !== undefined).map((m) => m.id);
/** running, and not a zombie waiting to be reaped */
const alive = (pid: number): boolean => isProcessAlive(pid);

describe('shim: ordering', () => {
  it('a held call does not block later messages; approved, it reaches the server after them', async () => {
    const gov = new ScriptedGovernance();
    const approval = deferred<WaitAnswer>();
    gov.onJudge = async (m) => ((m.params as { name?: string }).name === 'slow' ? { action: 'hold', approvalId: 'ap-1', consoleUrl: 'http://c/ap-1' } : { action: 'forward' });
    gov.onWait = () => approval.promise;
    const h = start({}, {}, gov);
    h.send(call(1, 'slow'));
    h.send(ping(2));
    h.send(call(3, 'echo'));
    assert.deepEqual((await h.response(2)).result, {});
    assert.equal((await h.response(3)).result.content[0].text, 'echo: 3');
    assert.equal(h.messages.some((m) => m.id === 1), false, 'the held call has no answer yet');
    assert.deepEqual(receivedIds(h), [2, 3], 'the server has not seen the held call');
    approval.resolve({ done: true, answer: { action: 'forward' } });
    assert.equal((await h.response(1)).result.content[0].text, 'echo: 1');
    assert.deepEqual(receivedIds(h), [2, 3, 1]);
    h.stdin.end();
    assert.equal(await h.done, 0);
  });

  it('a call being judged is not overtaken by the messages after it', async () => {
    const gov = new ScriptedGovernance();
    const verdict = deferred<JudgeAnswer>();
    gov.onJudge = () => verdict.promise;
    const h = start({}, {}, gov);
    // one chunk: both lines are read before the judge can answer
    h.stdin.write(`${JSON.stringify(call(1, 'echo'))}\n${JSON.stringify(ping(2))}\n${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/x' })}\n`);
    await new Promise((r) => setImmediate(r));
    // the call, and the notification whose method is not MCP's (unknown_methods is the service's to apply)
    assert.deepEqual(gov.judged.map((m) => m.method), ['tools/call', 'notifications/x']);
    verdict.resolve({ action: 'forward' });
    await h.response(2);
    await h.response(1);
    h.stdin.end();
    await h.done;
    assert.deepEqual(h.received().map((m) => m.method), ['tools/call', 'ping', 'notifications/x'], 'the server got them in the agent\'s order');
  });

  it('a refused call is answered by the service\'s response and never reaches the server', async () => {
    const gov = new ScriptedGovernance();
    gov.onJudge = async (m) => ({
      action: 'respond',
      response: { jsonrpc: '2.0', id: 'ignored', error: { code: -32014, message: "Tool 'rm' is denied by governance rules" } },
    });
    const h = start({}, {}, gov);
    h.send(call('c-1', 'rm'));
    h.send(ping(2));
    const r = await h.response('c-1');
    assert.equal(r.error.code, -32014);
    await h.response(2);
    h.stdin.end();
    await h.done;
    assert.deepEqual(receivedIds(h), [2]);
  });
});

describe('shim: messages that could make the server act are judged, whatever their shape', () => {
  it('drops a governed method sent as a notification and a lookalike notification, never asking, never forwarding', async () => {
    const gov = new ScriptedGovernance();
    const h = start({}, {}, gov);
    h.send({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'rm', arguments: {} } });
    h.send({ jsonrpc: '2.0', method: 'Tools/call', params: { name: 'rm', arguments: {} } });
    h.send({ jsonrpc: '2.0', method: 'completion/complete', params: { ref: { type: 'ref/prompt', name: 'secret' } } });
    h.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 99 } });
    h.send(ping(2));
    await h.response(2);
    h.stdin.end();
    await h.done;
    assert.deepEqual(h.received().map((m) => m.method), ['notifications/cancelled', 'ping'], 'only the ordinary notification and the ping reached the server');
    assert.equal(gov.judged.length, 0);
    assert.ok(h.logs.some((l) => l.msg.includes('lookalike of tools/call')), 'the lookalike is logged');
    assert.equal(gov.total('framing', 'inbound governed_notification'), 2);
    assert.equal(gov.total('framing', 'inbound method_lookalike'), 1);
  });

  it('sends lookalike and unknown requests, completion and unsubscribe to the service; a refused one never reaches the server', async () => {
    const gov = new ScriptedGovernance();
    gov.onJudge = async (m) => (m.method === 'vendor/ok' ? { action: 'forward' } : {
      action: 'respond', response: { jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'Method not found' } },
    });
    const h = start({}, {}, gov);
    h.send({ jsonrpc: '2.0', id: 1, method: 'tools.call', params: { name: 'rm' } });
    h.send({ jsonrpc: '2.0', id: 2, method: 'completion/complete', params: { ref: { type: 'ref/prompt', name: 'secret' } } });
    h.send({ jsonrpc: '2.0', id: 3, method: 'resources/unsubscribe', params: { uri: 'file:///etc/passwd' } });
    h.send({ jsonrpc: '2.0', id: 4, method: 'vendor/ok' });
    h.send({ jsonrpc: '2.0', method: 'vendor/notice' });
    h.send(ping(5));
    for (const id of [1, 2, 3]) assert.equal((await h.response(id)).error.code, -32601);
    await h.response(5);
    h.stdin.end();
    await h.done;
    assert.deepEqual(gov.judged.map((m) => m.method), ['tools.call', 'completion/complete', 'resources/unsubscribe', 'vendor/ok', 'vendor/notice']);
    assert.deepEqual(h.received().map((m) => m.method), ['vendor/ok', 'ping'], 'the refused request and notification never reached the server');
  });
});

describe('shim: holds', () => {
  it('reminds the agent with ITS progress token while held, and never invents one', async () => {
    const gov = new ScriptedGovernance();
    const approvals = new Map([['ap-a', deferred<WaitAnswer>()], ['ap-b', deferred<WaitAnswer>()]]);
    gov.onJudge = async (m) => ({ action: 'hold', approvalId: m.id === 1 ? 'ap-a' : 'ap-b', consoleUrl: 'http://console/x' });
    gov.onWait = (id) => approvals.get(id)!.promise;
    const h = start({ progressIntervalMs: 20 }, {}, gov);
    h.send(call(1, 'deploy', { _meta: { progressToken: 'tok-1' } }));
    h.send(call(2, 'deploy')); // no token
    const progress = (ms: Msg[]): Msg[] => ms.filter((m) => m.method === 'notifications/progress');
    await h.until((ms) => progress(ms).length >= 4, 'four reminders');
    const seen = progress(h.messages);
    assert.ok(seen.every((m) => m.params.progressToken === 'tok-1'), `only the agent's token: ${JSON.stringify(seen)}`);
    const values = seen.map((m) => m.params.progress);
    assert.deepEqual(values, [...values].sort((a, b) => a - b), 'progress increases');
    assert.equal(new Set(values).size, values.length);
    assert.match(seen[0]!.params.message, /Awaiting approval for tools\/call 'deploy'.*http:\/\/console\/x/);
    approvals.get('ap-a')!.resolve({ done: true, answer: { action: 'forward' } });
    approvals.get('ap-b')!.resolve({ done: true, answer: { action: 'respond', response: { jsonrpc: '2.0', id: 2, error: { code: -32007, message: 'rejected' } } } });
    assert.ok((await h.response(1)).result);
    assert.equal((await h.response(2)).error.code, -32007);
    const after = progress(h.messages).length;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(progress(h.messages).length, after, 'reminders stop with the decision');
    h.stdin.end();
    await h.done;
    assert.deepEqual(receivedIds(h), [1]);
  });

  it('a long poll that answers not-yet is asked again; a cancelled held call never reaches the server', async () => {
    const gov = new ScriptedGovernance();
    let polls = 0;
    const final = deferred<WaitAnswer>();
    gov.onJudge = async () => ({ action: 'hold', approvalId: 'ap-1', consoleUrl: '' });
    gov.onWait = () => (++polls < 3 ? Promise.resolve({ done: false }) : final.promise);
    const h = start({}, {}, gov);
    h.send(call(1, 'deploy'));
    await h.until(() => polls >= 3, 'three polls');
    h.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1, reason: 'user' } });
    h.send(ping(2));
    await h.response(2);
    final.resolve({ done: true, answer: { action: 'forward' } });
    h.send(ping(3));
    await h.response(3);
    h.stdin.end();
    await h.done;
    assert.deepEqual(h.received().map((m) => m.method), ['ping', 'ping'], 'neither the call nor its cancellation reached the server');
    assert.equal(h.messages.some((m) => m.id === 1), false, 'no answer to a cancelled call');
  });
});

describe('shim: cancellation', () => {
  it('a call cancelled while being judged is not forwarded even when the verdict is forward', async () => {
    const gov = new ScriptedGovernance();
    const verdict = deferred<JudgeAnswer>();
    gov.onJudge = () => verdict.promise;
    const h = start({}, {}, gov);
    h.stdin.write(`${JSON.stringify(call(1, 'echo'))}\n${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } })}\n`);
    await new Promise((r) => setImmediate(r));
    verdict.resolve({ action: 'forward' });
    h.send(ping(2));
    await h.response(2);
    h.stdin.end();
    await h.done;
    assert.deepEqual(h.received().map((m) => m.method), ['ping']);
  });
});

describe('shim: governance failures by profile', () => {
  const failing = (): ScriptedGovernance => {
    const gov = new ScriptedGovernance();
    gov.onJudge = async () => {
      throw new GovernanceUnavailable('POST /shim/v1/judge: ECONNREFUSED');
    };
    gov.onFilter = async () => {
      throw new GovernanceUnavailable('POST /shim/v1/filter: ECONNREFUSED');
    };
    return gov;
  };

  it('production answers -32013 and forwards nothing it could not judge or filter', async () => {
    const h = start({}, {}, failing());
    h.send(call(1, 'echo'));
    h.send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    const r = await h.response(1);
    assert.equal(r.error.code, -32013);
    assert.equal(r.error.data.error_type, 'service_unavailable');
    const list = await h.response(2);
    assert.equal(list.error.code, -32013, 'an unfiltered list is never shown');
    assert.equal(list.result, undefined);
    h.stdin.end();
    await h.done;
    assert.deepEqual(receivedIds(h), [2], 'the list request went out; the unjudged call did not');
  });

  it('development forwards and logs WOULD_BLOCK', async () => {
    const h = start({ profile: 'development' }, {}, failing());
    h.send(call(1, 'echo'));
    h.send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    assert.equal((await h.response(1)).result.content[0].text, 'echo: 1');
    assert.equal((await h.response(2)).result.tools.length, 3);
    h.stdin.end();
    await h.done;
    assert.ok(h.logs.some((l) => l.msg.startsWith('WOULD_BLOCK')), JSON.stringify(h.logs));
  });

  it('a held call whose long poll keeps failing is refused in production', async () => {
    const gov = new ScriptedGovernance();
    gov.onJudge = async () => ({ action: 'hold', approvalId: 'ap-1', consoleUrl: '' });
    let polls = 0;
    gov.onWait = async () => {
      polls++;
      throw new GovernanceUnavailable('GET /shim/v1/wait: ECONNRESET');
    };
    const h = start({ waitRetryMs: 10 }, {}, gov);
    h.send(call(1, 'deploy'));
    assert.equal((await h.response(1)).error.code, -32013);
    assert.equal(polls, 4, 'asked again three times before giving up');
    h.stdin.end();
    await h.done;
    assert.deepEqual(receivedIds(h), []);
  });
});

describe('shim: framing', () => {
  it('answers what it cannot forward, never forwards it, and counts it', async () => {
    const h = start({ maxLineBytes: 200 });
    h.send('this is not json');
    h.send('{"jsonrpc":"2.0","id":7,"method":5}');
    h.send('{"jsonrpc":"1.0","id":"v","method":"ping"}');
    h.send('[{"jsonrpc":"2.0","id":8,"method":"ping"}]');
    h.send('{"jsonrpc":"2.0","id":9,"result":{},"error":{"code":1,"message":"x"}}'); // a broken response: not answered
    h.stdin.write(Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a])); // invalid UTF-8
    h.send(`{"jsonrpc":"2.0","id":10,"method":"ping","params":{"pad":"${'x'.repeat(300)}"}}`);
    h.send(ping(11));
    await h.response(11);
    await h.until((ms) => ms.length >= 7, 'six framing answers and the ping');
    const errors = h.messages.filter((m) => m.error !== undefined);
    assert.deepEqual(errors.map((m) => [m.id, m.error.code]), [
      [null, -32700], [7, -32600], ['v', -32600], [null, -32600], [null, -32700], [null, -32600],
    ]);
    h.stdin.end();
    await h.done;
    assert.deepEqual(h.received().map((m) => m.id), [11], 'only the valid ping reached the server');
    assert.equal(h.gov.total('framing', 'inbound malformed_json'), 1);
    assert.equal(h.gov.total('framing', 'inbound invalid_request'), 2);
    assert.equal(h.gov.total('framing', 'inbound unsupported_version'), 1);
    assert.equal(h.gov.total('framing', 'inbound unsupported_batch'), 1);
    assert.equal(h.gov.total('framing', 'inbound invalid_utf8'), 1);
    assert.equal(h.gov.total('framing', 'inbound message_too_large'), 1);
  });

  it('drops what the server writes wrong, answers its broken request, and counts it', async () => {
    const h = start({}, { MINI_GARBAGE: '1' });
    h.send(ping(1));
    await h.response(1);
    h.stdin.end();
    await h.done;
    assert.deepEqual(h.messages.map((m) => m.id), [1], 'the agent saw only the ping answer');
    const answer = h.received().find((m) => m.id === 'srv-bad');
    assert.equal(answer?.error?.code, -32600, 'the server got an error for its invalid request');
    assert.equal(h.gov.total('framing', 'outbound malformed_json'), 1);
    assert.equal(h.gov.total('framing', 'outbound invalid_request'), 1);
    assert.equal(h.gov.total('framing', 'outbound unsupported_batch'), 1);
  });

  it('relays valid lines byte for byte and counts messages both ways', async () => {
    const h = start({}, { MINI_ECHO: '1' });
    const odd = '{ "method" : "notifications/odd",\t"jsonrpc":"2.0" , "params":{"é":"\\u00e9"} }';
    h.send(odd);
    h.send(ping(1));
    await h.response(1);
    h.stdin.end();
    await h.done;
    assert.equal(readFileSync(h.record, 'utf8').split('\n')[0], odd, 'the server got the exact bytes');
    const echo = h.messages.find((m) => m.method === 'echo' && m.params.line === odd);
    assert.ok(echo, 'and its echo came back');
    assert.ok(h.rawOut().includes(JSON.stringify({ jsonrpc: '2.0', method: 'echo', params: { line: odd } })), 'server lines reach the agent unchanged');
    assert.equal(h.gov.total('messages', 'inbound ping'), 1);
    assert.equal(h.gov.total('messages', 'inbound notifications/odd'), 1);
    assert.equal(h.gov.total('messages', 'outbound response'), 1);
    assert.equal(h.gov.total('messages', 'outbound echo'), 2);
  });
});

describe('shim: counts', () => {
  it('are reported while running; a failed report is carried by the next; none lost or doubled at exit', async () => {
    const gov = new ScriptedGovernance();
    let failed = 0;
    gov.onEvents = async (r) => {
      if (r.messages.length > 0 && failed++ === 0) throw new GovernanceUnavailable('HTTP 503', 503);
    };
    const h = start({ eventsIntervalMs: 20 }, {}, gov);
    h.send(ping(1));
    await h.response(1);
    await h.until(() => gov.total('messages', 'inbound ping') === 1, 'the ping counted while the shim runs');
    assert.ok(failed >= 2, 'the first report failed and a later one carried it');
    h.send(ping(2));
    await h.response(2);
    h.stdin.end();
    await h.done;
    assert.equal(gov.total('messages', 'inbound ping'), 2);
    assert.equal(gov.total('messages', 'outbound response'), 2);
  });
});

describe('shim: list filtering', () => {
  it('filters answers to list requests, only those', async () => {
    const gov = new ScriptedGovernance();
    gov.onFilter = async (_method, m) => {
      const r = m as { result: { tools: { name: string }[] } };
      return { ...m, result: { tools: r.result.tools.filter((t) => t.name !== 'secret') } };
    };
    const h = start({}, {}, gov);
    h.send({ jsonrpc: '2.0', id: 'l1', method: 'tools/list' });
    h.send(ping('p1'));
    const list = await h.response('l1');
    assert.deepEqual(list.result.tools.map((t: { name: string }) => t.name), ['echo', 'exit']);
    await h.response('p1');
    assert.deepEqual(gov.filtered, ['tools/list']);
    h.stdin.end();
    await h.done;
  });
});

describe('shim: lifecycle', () => {
  it('the agent closes stdin: the server ends and its exit code is ours', async () => {
    const h = start({}, { MINI_EXIT_CODE: '7' });
    h.send(ping(1));
    await h.response(1);
    h.stdin.end();
    assert.equal(await h.done, 7);
    assert.equal(h.gov.closed, true);
  });

  it('calls still being judged at end of input go out before the server\'s stdin closes', async () => {
    const gov = new ScriptedGovernance();
    gov.onJudge = () => new Promise((r) => setTimeout(() => r({ action: 'forward' }), 50));
    const h = start({}, {}, gov);
    h.stdin.end(`${JSON.stringify(call(1, 'echo'))}\n`);
    assert.equal(await h.done, 0);
    assert.deepEqual(receivedIds(h), [1]);
  });

  it('the server exits by itself: we exit with its code while the agent still writes', async () => {
    const h = start();
    h.send({ jsonrpc: '2.0', id: 1, method: 'exit', params: { code: 9 } });
    assert.equal(await h.done, 9);
  });

  it('a server that ignores stdin close and SIGTERM is killed; the code says so', async () => {
    const h = start({}, { MINI_IGNORE_TERM: '1' });
    h.send(ping(1));
    await h.response(1);
    const pid = Number(readFileSync(h.pidFile, 'utf8'));
    h.stdin.end();
    assert.equal(await h.done, 137);
    assert.equal(alive(pid), false);
  });

  it('our stdout breaks (EPIPE): the server is ended, not orphaned', async () => {
    const broken = new Writable({
      write(_c, _e, cb) {
        const e = new Error('write EPIPE') as NodeJS.ErrnoException;
        e.code = 'EPIPE';
        cb(e);
      },
    });
    const h = start({ stdout: broken });
    await new Promise<void>((r) => {
      const t = setInterval(() => existsSync(h.pidFile) && readFileSync(h.pidFile, 'utf8') && (clearInterval(t), r()), 10);
    });
    const pid = Number(readFileSync(h.pidFile, 'utf8'));
    h.send(ping(1)); // its answer cannot be written
    const code = await h.done;
    assert.equal(code, 0, 'the server exited on stdin close');
    assert.equal(alive(pid), false);
    assert.ok(h.logs.some((l) => /cannot write to the agent/.test(l.msg)));
  });

  it('a server command that does not exist: 127 and a clear message', async () => {
    const h = start({ command: ['/nonexistent/mcp-server'] });
    assert.equal(await h.done, 127);
    assert.match(h.errText(), /cannot start the server '\/nonexistent\/mcp-server'/);
  });
});

describe('shim: start', () => {
  it('production refuses to start when governance is unreachable; the server is never started', async () => {
    const gov = new ScriptedGovernance();
    gov.healthy = false;
    const h = start({ healthTries: 2 }, {}, gov);
    assert.equal(await h.done, 1);
    assert.match(h.errText(), /unreachable.*refusing to start/);
    assert.equal(existsSync(h.pidFile), false);
    assert.equal(h.rawOut(), '', 'nothing on the agent\'s stdout');
  });

  it('production refuses without a token, or when the token is refused', async () => {
    const h = start({ token: undefined });
    assert.equal(await h.done, 1);
    assert.match(h.errText(), /THOUGHTGATE_GOVERNANCE_TOKEN is not set/);
    const gov = new ScriptedGovernance();
    gov.onEvents = async () => {
      throw new GovernanceUnavailable('HTTP 401', 401);
    };
    const h2 = start({}, {}, gov);
    assert.equal(await h2.done, 1);
    assert.match(h2.errText(), /refused our token/);
    assert.equal(existsSync(h2.pidFile), false);
  });

  it('development starts anyway and forwards', async () => {
    const gov = new ScriptedGovernance();
    gov.healthy = false;
    gov.onJudge = async () => {
      throw new GovernanceUnavailable('ECONNREFUSED');
    };
    const h = start({ profile: 'development' }, {}, gov);
    h.send(call(1, 'echo'));
    assert.equal((await h.response(1)).result.content[0].text, 'echo: 1');
    h.stdin.end();
    assert.equal(await h.done, 0);
  });
});

describe('parseShimArgs', () => {
  it('reads flags, env defaults and the command after --', () => {
    assert.deepEqual(parseShimArgs(['--server-id', 'fs', '--governance', 'http://127.0.0.1:1', '--', 'node', 'srv.js', '--x'], {}), {
      serverId: 'fs', governanceUrl: 'http://127.0.0.1:1', profile: 'production', command: ['node', 'srv.js', '--x'], verbose: false,
    });
    const r = parseShimArgs(['--profile=development', '--', 'srv'], { THOUGHTGATE_SERVER_ID: 'e', THOUGHTGATE_GOVERNANCE_URL: 'http://h:2' });
    assert.deepEqual(r, { serverId: 'e', governanceUrl: 'http://h:2', profile: 'development', command: ['srv'], verbose: false });
    assert.equal(parseShimArgs(['--help'], {}), 'help');
  });

  it('refuses what it cannot run', () => {
    const bad: string[][] = [
      ['--governance', 'http://h', '--', 'srv'],
      ['--server-id', 'x', '--', 'srv'],
      ['--server-id', 'x', '--governance', 'ftp://h', '--', 'srv'],
      ['--server-id', 'x', '--governance', 'http://h', '--profile', 'lax', '--', 'srv'],
      ['--server-id', 'x', '--governance', 'http://h', '--'],
      ['--server-id', 'x', '--governance', 'http://h', 'srv'],
      ['--server-id'],
      ['--bogus', '--', 'srv'],
    ];
    for (const args of bad) assert.throws(() => parseShimArgs(args, {}), ShimUsageError, args.join(' '));
  });
});

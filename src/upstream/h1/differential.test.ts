// Differential tests: the lean client and undici (the client it replaces) read the same bytes
// from the same raw server and must deliver the same status, header values and body bytes; on
// malformed answers both must fail.
import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import type { HeaderMap } from '../types.js';
import { LeanHttpUpstream } from './client.js';
import { exchange, rawServer, responseArb, serialise, sleep, splitAt, type RawServer } from './testkit.js';

interface Seen {
  status: number;
  headers: HeaderMap;
  body: Buffer;
  error: string | undefined;
}

const trimOws = (v: string): string => v.replace(/[ \t]+$/, '');

/** undici (a Pool, as HttpUpstream uses) through `dispatch` with a handler shaped like HttpUpstream's RelayHandler (1xx ignored, arrays joined). */
function viaUndici(client: Pool, body: Buffer): Promise<Seen> {
  return new Promise((resolve) => {
    const seen: Seen = { status: 0, headers: {}, body: Buffer.alloc(0), error: undefined };
    const chunks: Buffer[] = [];
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart() {},
      onResponseStart(_c, statusCode, headers) {
        if (statusCode < 200) return;
        seen.status = statusCode;
        for (const name in headers) {
          const v = headers[name];
          // One deliberate difference: llhttp keeps trailing whitespace in a field value; the lean
          // parser drops it as RFC 9110 §5.5 says a field value does not include it.
          if (v !== undefined) seen.headers[name] = Array.isArray(v) ? v.map(trimOws).join(', ') : trimOws(v);
        }
      },
      onResponseData(_c, chunk) {
        chunks.push(Buffer.from(chunk));
      },
      onResponseEnd() {
        seen.body = Buffer.concat(chunks);
        resolve(seen);
      },
      onResponseError(_c, err) {
        seen.error = (err as { code?: string }).code ?? err.message;
        resolve(seen);
      },
    };
    client.dispatch({ path: '/mcp', method: 'POST', headers: { 'content-type': 'application/json' }, body }, handler);
  });
}

async function viaLean(up: LeanHttpUpstream, body: Buffer): Promise<Seen> {
  const o = await exchange(up, { body });
  return { status: o.status, headers: o.headers, body: o.body, error: o.error?.kind };
}

/** What the server answers next: wire bytes, how to cut them into writes, and whether to close after. */
let current: { pieces: Buffer[]; close: boolean } = { pieces: [], close: false };

async function writePieces(socket: net.Socket): Promise<void> {
  const { pieces, close } = current;
  for (let i = 0; i < pieces.length; i++) {
    if (socket.destroyed) return;
    socket.write(pieces[i]!);
    if (i < pieces.length - 1) await sleep(1); // separate reads on the client side (mostly)
  }
  if (close) socket.end();
}

describe('lean client vs undici on the same bytes', { timeout: 120_000 }, () => {
  let srv: RawServer;
  let up: LeanHttpUpstream;
  let client: Pool;
  before(async () => {
    srv = await rawServer((socket) => writePieces(socket));
    up = new LeanHttpUpstream({ url: srv.url, requestTimeoutMs: 5000, streamReadTimeoutMs: 5000, connections: 2 });
    client = new Pool(`http://127.0.0.1:${srv.port}`, { connections: 2, headersTimeout: 5000, bodyTimeout: 5000 });
  });
  after(async () => {
    await up.close();
    await client.destroy();
    await srv.close();
  });

  it('generated responses, split at random points: same status, header values and body bytes', async () => {
    await fc.assert(
      fc.asyncProperty(responseArb, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }), fc.uint8Array({ maxLength: 200 }), async (r, cuts, reqBody) => {
        const wire = serialise(r);
        current = { pieces: splitAt(wire, cuts), close: r.framing === 'close' && r.status !== 204 && r.status !== 304 };
        const body = Buffer.from(reqBody);
        const ours = await viaLean(up, body);
        const theirs = await viaUndici(client, body);
        assert.equal(theirs.error, undefined, `undici failed: ${theirs.error}`);
        assert.equal(ours.error, undefined, `lean failed: ${ours.error}`);
        assert.equal(ours.status, theirs.status);
        assert.deepEqual({ ...ours.headers }, theirs.headers);
        assert.ok(ours.body.equals(theirs.body), 'same body bytes');
        assert.ok(ours.body.equals(r.status === 204 || r.status === 304 ? Buffer.alloc(0) : Buffer.from(r.body)));
      }),
      { numRuns: Number(process.env.H1_DIFF_RUNS ?? 150) },
    );
  });

  const malformed: [string, string][] = [
    ['bad status line', 'HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n'],
    ['not HTTP', 'SSH-2.0-OpenSSH_9.2\r\n\r\n'],
    ['bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
    ['CL + TE', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'],
    ['differing CL', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
    ['invalid CL', 'HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\na'],
    ['oversize head', `HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(80 * 1024)}\r\nContent-Length: 0\r\n\r\n`],
    ['NUL in a value', 'HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n'],
    ['space before colon', 'HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 0\r\n\r\n'],
    ['missing CRLF after chunk data', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n'],
    ['cut short', 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc'],
  ];
  for (const [name, wire] of malformed) {
    it(`both fail on a malformed answer: ${name}`, async () => {
      current = { pieces: [Buffer.from(wire, 'latin1')], close: true };
      const ours = await viaLean(up, Buffer.from('{}'));
      const theirs = await viaUndici(client, Buffer.from('{}'));
      assert.notEqual(theirs.error, undefined, `undici accepted ${name}`);
      assert.notEqual(ours.error, undefined, `lean accepted ${name}`);
    });
  }
});

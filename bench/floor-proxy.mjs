// The floor a proxy on this stack can reach: uWS front end + the lean upstream client, nothing
// else (no framing checks, gates, audit, metrics or relay logic). bench/cpu.mjs --floor sets it
// beside thoughtgate so the cost of governance itself can be read off.
// Usage: node bench/floor-proxy.mjs UPSTREAM_URL PORT   (prints "ready PORT")
import { startTrafficServer } from '../dist/transport/http-server.js';
import { LeanHttpUpstream } from '../dist/upstream/h1/client.js';

const [url, port] = process.argv.slice(2);
const upstream = new LeanHttpUpstream({ url, requestTimeoutMs: 30_000, streamReadTimeoutMs: 30_000, connections: 256 });

class Sink {
  constructor(ex) { this.ex = ex; this.status = 0; this.headers = null; this.chunks = []; }
  onHead(status, h) {
    this.status = status;
    this.headers = { 'content-type': h['content-type'] ?? 'application/json' };
    if (h['mcp-session-id']) this.headers['mcp-session-id'] = h['mcp-session-id'];
  }
  onData(chunk) { this.chunks.push(chunk); return true; }
  onEnd() { this.ex.respond(this.status, this.headers, this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks)); }
  onError() { this.ex.respond(502, null, 'upstream failed'); }
}

const server = await startTrafficServer({
  host: '127.0.0.1', port: Number(port), maxBodyBytes: 1 << 20,
  handler(ex) {
    const h = ex.headers;
    const headers = { 'content-type': 'application/json', accept: h.accept ?? 'application/json' };
    if (h['mcp-session-id']) headers['mcp-session-id'] = h['mcp-session-id'];
    if (h['mcp-protocol-version']) headers['mcp-protocol-version'] = h['mcp-protocol-version'];
    upstream.send({ method: ex.method, path: ex.path, headers, body: ex.body ?? undefined, correlationId: '-' }, new Sink(ex));
  },
});
console.log(`ready ${server.port}`);

// A stand-in desktop agent (no real agent binary runs here). It reads its own MCP config in
// the real format of the agent it plays, launches every configured server the way agents do
// (stdio: the SDK's StdioClientTransport; HTTP: StreamableHTTPClientTransport with the entry's
// headers), lists tools and calls some, and writes what it saw as JSON.
// usage: node fake-agent.mjs FORMAT CONFIG OUT [MODE]
//   FORMAT  mcpServers | claude-code | servers | context_servers
//   MODE    run (default; exits 7) | sleep (writes OUT, then waits to be killed)
// Calls, per server: tools/list, then each of CALLS (JSON array of {name, arguments}) from env.
import { readFileSync, writeFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [format, configPath, outPath, mode = 'run'] = process.argv.slice(2);
const raw = readFileSync(configPath, 'utf8');
const seen = { pid: process.pid, configText: raw, env: { active: process.env.THOUGHTGATE_ACTIVE ?? null }, servers: {} };
if (mode === 'sleep') {
  writeFileSync(outPath, JSON.stringify(seen));
  setTimeout(() => process.exit(0), 60_000); // never outlive a failed test by much
} else {
  // The agents' own parsers are lenient JSONC readers; strip comments and trailing commas the simple way.
  const json = JSON.parse(raw.replace(/^\s*\/\/.*$/gm, '').replace(/,(\s*[}\]])/g, '$1'));
  const servers = format === 'claude-code' ? { ...(json.mcpServers ?? {}), ...(json.projects?.[process.cwd()]?.mcpServers ?? {}) }
    : format === 'servers' ? json.servers ?? {}
      : format === 'context_servers' ? json.context_servers ?? {}
        : json.mcpServers ?? {};
  const calls = JSON.parse(process.env.FAKE_AGENT_CALLS ?? '[{"name":"echo","arguments":{"message":"wrapped-hello"}}]');
  for (const [id, entry] of Object.entries(servers)) {
    const s = (seen.servers[id] = { entry, results: [] });
    const client = new Client({ name: 'fake-agent', version: '1.0.0' });
    try {
      let transport;
      if (entry.url) {
        transport = new StreamableHTTPClientTransport(new URL(entry.url), { requestInit: { headers: entry.headers ?? {} } });
      } else {
        const command = typeof entry.command === 'object' ? entry.command.path : entry.command;
        const args = typeof entry.command === 'object' ? entry.command.args ?? [] : entry.args ?? [];
        const env = typeof entry.command === 'object' ? entry.command.env ?? {} : entry.env ?? {};
        transport = new StdioClientTransport({ command, args, env: { ...process.env, ...env }, stderr: 'pipe' });
        transport.stderr?.on('data', (d) => { s.stderr = (s.stderr ?? '') + d.toString(); });
      }
      await client.connect(transport);
      s.tools = (await client.listTools()).tools.map((x) => x.name);
      for (const c of calls) {
        try {
          const r = await client.callTool(c);
          s.results.push({ name: c.name, text: r?.content?.[0]?.text ?? null, isError: r?.isError ?? false });
        } catch (e) {
          s.results.push({ name: c.name, code: e?.code ?? null, message: String(e?.message ?? e).slice(0, 300) });
        }
      }
      await client.close();
    } catch (e) {
      s.error = String(e?.message ?? e).slice(0, 300);
    }
  }
  writeFileSync(outPath, JSON.stringify(seen));
  process.exit(7);
}

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'jsonc-parser';
import type { ConfigTarget } from './agents.js';
import { restore, writeBackup, acquireLock } from './backup.js';
import { AlreadyWrappedError, ConfigParseError, detectFormatting, planRewrite } from './rewrite.js';
import type { RewriteOptions } from './rewrite.js';

const OPTS: RewriteOptions = {
  shimCommand: '/usr/bin/node',
  shimArgsPrefix: ['/opt/tg/bin/thoughtgate.js', 'shim'],
  governanceUrl: 'http://127.0.0.1:43117',
  token: 'tok-123',
  profile: 'production',
};
const PROJECT = '/home/me/app';

const shim = (id: string, command: string, ...args: string[]): string[] => [
  '/opt/tg/bin/thoughtgate.js',
  'shim',
  '--server-id',
  id,
  '--governance',
  'http://127.0.0.1:43117',
  '--profile',
  'production',
  '--',
  command,
  ...args,
];
const tgEnv = (id: string) => ({
  THOUGHTGATE_SERVER_ID: id,
  THOUGHTGATE_GOVERNANCE_URL: 'http://127.0.0.1:43117',
  THOUGHTGATE_GOVERNANCE_TOKEN: 'tok-123',
});

/** The agents' real formats, each with something a careless rewrite would lose. */
const FIXTURES: Record<string, { target: Omit<ConfigTarget, 'path'>; text: string }> = {
  'claude-code ~/.claude.json': {
    target: { agent: 'claude-code', format: 'claude-code-projects', projectKey: PROJECT },
    text: `{
  "numStartups": 42,
  "installMethod": "npm",
  "autoUpdates": true,
  "mcpServers": {
    "github": {
      "type": "stdio",
      "command": "npx",
      "args": [
        "-y",
        "@modelcontextprotocol/server-github"
      ],
      "env": {
        "GITHUB_PERSONAL_ACCESS_TOKEN": "\${GITHUB_TOKEN}"
      }
    }
  },
  "projects": {
    "${PROJECT}": {
      "allowedTools": [],
      "history": [
        {
          "display": "fix the tests",
          "pastedContents": {}
        }
      ],
      "mcpServers": {
        "fs": {
          "type": "stdio",
          "command": "node",
          "args": [
            "server.js",
            "\${HOME}/data"
          ],
          "env": {}
        },
        "linear": {
          "type": "http",
          "url": "https://mcp.linear.app/mcp",
          "headers": {
            "Authorization": "Bearer \${LINEAR_TOKEN}"
          }
        }
      },
      "enabledMcpjsonServers": [],
      "hasTrustDialogAccepted": true
    },
    "/home/me/other": {
      "mcpServers": {
        "other": {
          "command": "other-server"
        }
      }
    }
  },
  "userID": "abc123"
}`,
  },
  'claude-code .mcp.json': {
    target: { agent: 'claude-code', format: 'mcpServers' },
    text: `{
  "mcpServers": {
    "db": { "command": "uvx", "args": ["mcp-server-sqlite", "--db-path", "./data.db"] },
    "sentry": { "type": "sse", "url": "https://mcp.sentry.dev/sse" }
  }
}
`,
  },
  'claude-desktop odd formatting': {
    target: { agent: 'claude-desktop', format: 'mcpServers' },
    text: `{
  "globalShortcut": "Ctrl+Alt+Space",
    "mcpServers":{"filesystem" : {
      "command": "npx",
      "args": ["-y","@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"]
  }}
}`,
  },
  'cursor user': {
    target: { agent: 'cursor', format: 'mcpServers' },
    text: `{
  "mcpServers": {
    "browser": {
      "command": "npx",
      "args": ["@browsermcp/mcp@latest"]
    },
    "remote": {
      "url": "https://example.com/mcp",
      "headers": {
        "API_KEY": "value"
      }
    }
  }
}
`,
  },
  'cursor project (tabs, CRLF)': {
    target: { agent: 'cursor', format: 'mcpServers' },
    text: '{\r\n\t"mcpServers": {\r\n\t\t"proj": {\r\n\t\t\t"command": "python",\r\n\t\t\t"args": ["-m", "proj_server"],\r\n\t\t\t"env": {\r\n\t\t\t\t"API_KEY": "value"\r\n\t\t\t}\r\n\t\t}\r\n\t}\r\n}\r\n',
  },
  'vscode .vscode/mcp.json': {
    target: { agent: 'vscode', format: 'servers' },
    text: `{
  // 💡 Inputs are prompted on first server start, then stored securely by VS Code.
  "inputs": [
    {
      "type": "promptString",
      "id": "perplexity-key",
      "description": "Perplexity API Key",
      "password": true
    }
  ],
  "servers": {
    // https://github.com/ppl-ai/modelcontextprotocol/
    "Perplexity": {
      "type": "stdio",
      "command": "npx",
      "args": ["-y", "server-perplexity-ask"],
      "env": {
        "PERPLEXITY_API_KEY": "\${input:perplexity-key}"
      }
    },
    "github": {
      "type": "http",
      "url": "https://api.githubcopilot.com/mcp/"
    }
  }
}
`,
  },
  windsurf: {
    target: { agent: 'windsurf', format: 'mcpServers' },
    text: `{
  "mcpServers": {
    "google-maps": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-google-maps"],
      "env": {
        "GOOGLE_MAPS_API_KEY": "<YOUR_API_KEY>"
      }
    },
    "figma": {
      "serverUrl": "https://figma.example/mcp"
    }
  }
}
`,
  },
  'zed settings.json': {
    target: { agent: 'zed', format: 'context_servers' },
    text: `// Zed settings
//
// For information on how to configure Zed, see the Zed
// documentation: https://zed.dev/docs/configuring-zed
{
  "ui_font_size": 16,
  "buffer_font_size": 15,
  "theme": {
    "mode": "system",
    "light": "One Light",
    "dark": "One Dark"
  },
  "context_servers": {
    "postgres": {
      "source": "custom",
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-postgres", "postgresql://localhost/db"],
      "env": {}
    },
    // the older shape
    "git": {
      "command": {
        "path": "uvx",
        "args": ["mcp-server-git"],
        "env": { "GIT_DIR": "/tmp" }
      },
      "settings": {}
    },
    "mcp-server-context7": {
      "source": "extension",
      "settings": {}
    },
  },
}
`,
  },
  'jsonc comments and trailing commas': {
    target: { agent: 'custom', format: 'mcpServers' },
    text: `{
  /* servers the team shares */
  "mcpServers": {
    "everything": {
      "command": "npx", // from npm
      "args": ["-y", "@modelcontextprotocol/server-everything",],
    },
  },
}
`,
  },
};

function plan(name: string, opts: RewriteOptions = OPTS) {
  const f = FIXTURES[name]!;
  return planRewrite(f.text, { ...f.target, path: `/cfg/${name}` }, opts);
}
const parsed = (text: string) => parse(text, [], { allowTrailingComma: true }) as Record<string, any>;

describe('planRewrite: stdio entries', () => {
  it('Claude Code: rewrites user-level and this project’s servers, not other projects, and keeps every other key', () => {
    const p = plan('claude-code ~/.claude.json');
    const v = parsed(p.text);
    assert.equal(v.mcpServers.github.command, '/usr/bin/node');
    assert.deepEqual(v.mcpServers.github.args, shim('github', 'npx', '-y', '@modelcontextprotocol/server-github'));
    assert.deepEqual(v.mcpServers.github.env, { GITHUB_PERSONAL_ACCESS_TOKEN: '${GITHUB_TOKEN}', ...tgEnv('github') });
    assert.equal(v.mcpServers.github.type, 'stdio');
    const fs = v.projects[PROJECT].mcpServers.fs;
    assert.deepEqual(fs.args, shim('fs', 'node', 'server.js', '${HOME}/data'));
    assert.deepEqual(fs.env, tgEnv('fs'));
    assert.deepEqual(v.projects['/home/me/other'], { mcpServers: { other: { command: 'other-server' } } });
    assert.deepEqual(v.projects[PROJECT].history, [{ display: 'fix the tests', pastedContents: {} }]);
    assert.equal(v.numStartups, 42);
    assert.equal(v.userID, 'abc123');
    assert.deepEqual(
      p.servers.map((s) => [s.id, s.kind, s.path.join('/')]),
      [
        ['github', 'stdio', 'mcpServers/github'],
        ['fs', 'stdio', `projects/${PROJECT}/mcpServers/fs`],
        ['linear', 'http', `projects/${PROJECT}/mcpServers/linear`],
      ],
    );
  });

  it('leaves ${VAR} references for the agent to expand', () => {
    const p = plan('claude-code ~/.claude.json');
    assert.ok(p.text.includes('"${GITHUB_TOKEN}"'));
    assert.ok(p.text.includes('"${HOME}/data"'));
    assert.ok(!p.text.includes(process.env.HOME ?? '\u0000'));
  });

  it('Claude Desktop: the unrelated key stays, the entry goes through the shim', () => {
    const v = parsed(plan('claude-desktop odd formatting').text);
    assert.equal(v.globalShortcut, 'Ctrl+Alt+Space');
    assert.deepEqual(v.mcpServers.filesystem, {
      command: '/usr/bin/node',
      args: shim('filesystem', 'npx', '-y', '@modelcontextprotocol/server-filesystem', '/Users/me/Desktop'),
      env: tgEnv('filesystem'),
    });
  });

  it('Cursor project: the user’s env keys are kept next to ours', () => {
    const v = parsed(plan('cursor project (tabs, CRLF)').text);
    assert.deepEqual(v.mcpServers.proj.env, { API_KEY: 'value', ...tgEnv('proj') });
    assert.deepEqual(v.mcpServers.proj.args, shim('proj', 'python', '-m', 'proj_server'));
  });

  it('VS Code: `servers` with `type: stdio`, inputs and ${input:…} untouched', () => {
    const p = plan('vscode .vscode/mcp.json');
    const v = parsed(p.text);
    assert.equal(v.servers.Perplexity.type, 'stdio');
    assert.deepEqual(v.servers.Perplexity.args, shim('Perplexity', 'npx', '-y', 'server-perplexity-ask'));
    assert.equal(v.servers.Perplexity.env.PERPLEXITY_API_KEY, '${input:perplexity-key}');
    assert.equal(v.inputs[0].id, 'perplexity-key');
  });

  it('Zed: a string command keeps its string shape, {path, args} keeps its object shape, extension servers are skipped', () => {
    const p = plan('zed settings.json');
    const v = parsed(p.text);
    assert.deepEqual(v.context_servers.postgres, {
      source: 'custom',
      command: '/usr/bin/node',
      args: shim('postgres', 'npx', '-y', '@modelcontextprotocol/server-postgres', 'postgresql://localhost/db'),
      env: tgEnv('postgres'),
    });
    assert.deepEqual(v.context_servers.git, {
      command: { path: '/usr/bin/node', args: shim('git', 'uvx', 'mcp-server-git'), env: { GIT_DIR: '/tmp', ...tgEnv('git') } },
      settings: {},
    });
    assert.deepEqual(v.context_servers['mcp-server-context7'], { source: 'extension', settings: {} });
    const skipped = p.servers.find((s) => s.id === 'mcp-server-context7')!;
    assert.equal(skipped.kind, 'skipped');
    assert.match(skipped.why!, /no `command` or `url`/);
    assert.equal(v.theme.dark, 'One Dark');
  });

  it('uses the development profile when asked', () => {
    const v = parsed(plan('windsurf', { ...OPTS, profile: 'development' }).text);
    const args: string[] = v.mcpServers['google-maps'].args;
    assert.equal(args[args.indexOf('--profile') + 1], 'development');
  });
});

describe('planRewrite: HTTP entries', () => {
  it('points the url at the governance proxy and carries the original url and the token in headers', () => {
    const v = parsed(plan('claude-code ~/.claude.json').text);
    assert.deepEqual(v.projects[PROJECT].mcpServers.linear, {
      type: 'http',
      url: 'http://127.0.0.1:43117/http/linear/mcp',
      headers: {
        Authorization: 'Bearer ${LINEAR_TOKEN}',
        'x-thoughtgate-upstream': 'https://mcp.linear.app/mcp',
        'x-thoughtgate-token': 'tok-123',
      },
    });
  });
  it('leaves a legacy SSE-transport entry untouched and says it is not governed', () => {
    const p = plan('claude-code .mcp.json');
    const v = parsed(p.text);
    assert.deepEqual(v.mcpServers.sentry, { type: 'sse', url: 'https://mcp.sentry.dev/sse' });
    const s = p.servers.find((x) => x.id === 'sentry');
    assert.equal(s?.kind, 'skipped');
    assert.match(s?.why ?? '', /legacy 'sse' transport/);
  });
  it('adds headers where there were none', () => {
    const p = planRewrite('{"mcpServers":{"remote":{"type":"http","url":"https://example.test/mcp"}}}', { path: '/x', agent: 'custom', format: 'mcpServers' }, OPTS);
    assert.deepEqual(parsed(p.text).mcpServers.remote, {
      type: 'http',
      url: 'http://127.0.0.1:43117/http/remote/mcp',
      headers: { 'x-thoughtgate-upstream': 'https://example.test/mcp', 'x-thoughtgate-token': 'tok-123' },
    });
    assert.deepEqual(p.servers, [{ id: 'remote', kind: 'http', path: ['mcpServers', 'remote'], transport: 'http' }]);
  });
  it('rewrites Windsurf’s serverUrl in place and url-encodes the server id', () => {
    const v = parsed(plan('windsurf').text);
    assert.equal(v.mcpServers.figma.serverUrl, 'http://127.0.0.1:43117/http/figma/mcp');
    assert.equal(v.mcpServers.figma.url, undefined);
    const odd = planRewrite('{"mcpServers":{"a b/c":{"url":"https://x"}}}', { path: '/x', agent: 'custom', format: 'mcpServers' }, OPTS);
    assert.equal(parsed(odd.text).mcpServers['a b/c'].url, 'http://127.0.0.1:43117/http/a%20b%2Fc/mcp');
  });
});

describe('planRewrite: formatting', () => {
  it('keeps comments, including those inside rewritten entries, and accepts trailing commas', () => {
    const p = plan('jsonc comments and trailing commas');
    assert.ok(p.text.includes('/* servers the team shares */'));
    assert.ok(p.text.includes('// from npm'));
    const z = plan('zed settings.json').text;
    for (const c of ['// Zed settings', '// documentation: https://zed.dev/docs/configuring-zed', '// the older shape']) assert.ok(z.includes(c), c);
    const vs = plan('vscode .vscode/mcp.json').text;
    assert.ok(vs.includes('// 💡 Inputs are prompted'));
    assert.ok(vs.includes('// https://github.com/ppl-ai/modelcontextprotocol/'));
  });
  it('leaves untouched lines byte for byte', () => {
    const before = FIXTURES['claude-code ~/.claude.json']!.text;
    const after = plan('claude-code ~/.claude.json').text;
    const tail = before.slice(before.indexOf('      "enabledMcpjsonServers"'));
    assert.ok(after.endsWith(tail));
    assert.ok(after.startsWith(before.slice(0, before.indexOf('    "github"'))));
  });
  it('writes inserted lines with the file’s own indentation and line endings', () => {
    const text = plan('cursor project (tabs, CRLF)').text;
    assert.ok(!/[^\r]\n/.test(text), 'every newline is CRLF');
    assert.ok(text.includes('\r\n\t\t\t\t"THOUGHTGATE_SERVER_ID": "proj"'));
    assert.deepEqual(detectFormatting('{\n    "a": 1\n}'), { tabSize: 4, insertSpaces: true, eol: '\n' });
    assert.deepEqual(detectFormatting('{\r\n\t"a": 1\r\n}'), { tabSize: 4, insertSpaces: false, eol: '\r\n' });
  });
  it('keeps a UTF-8 byte order mark', () => {
    const p = planRewrite('\uFEFF{"mcpServers":{"a":{"command":"x"}}}', { path: '/x', agent: 'custom', format: 'mcpServers' }, OPTS);
    assert.ok(p.text.startsWith('\uFEFF{'));
    assert.equal(parsed(p.text.slice(1)).mcpServers.a.command, '/usr/bin/node');
  });
  it('returns the text unchanged when there are no servers', () => {
    const text = '{\n  "globalShortcut": "x"\n}\n';
    const p = planRewrite(text, { path: '/x', agent: 'custom', format: 'mcpServers' }, OPTS);
    assert.equal(p.text, text);
    assert.deepEqual(p.servers, []);
  });
});

describe('planRewrite: refusals', () => {
  it('an unparseable file → ConfigParseError with file, line and column', () => {
    const text = '{\n  "mcpServers": {\n    "a": { "command": "x" }\n    "b": {}\n  }\n}\n';
    assert.throws(
      () => planRewrite(text, { path: '/cfg/broken.json', agent: 'custom', format: 'mcpServers' }, OPTS),
      (e: unknown) => {
        assert.ok(e instanceof ConfigParseError);
        assert.equal(e.file, '/cfg/broken.json');
        assert.equal(e.line, 4);
        assert.equal(e.column, 5);
        assert.match(e.message, /^\/cfg\/broken\.json:4:5: invalid JSON: expected ','.*left untouched/);
        return true;
      },
    );
  });
  it('an empty file, a non-object top level or a non-object server map → ConfigParseError', () => {
    const t = { path: '/cfg/x.json', agent: 'custom' as const, format: 'mcpServers' as const };
    assert.throws(() => planRewrite('', t, OPTS), ConfigParseError);
    assert.throws(() => planRewrite('[1]', t, OPTS), /top level is an array/);
    assert.throws(() => planRewrite('{\n "mcpServers": [1]\n}', t, OPTS), (e: unknown) => e instanceof ConfigParseError && e.line === 2 && /must be an object/.test(e.message));
  });
  it('a config a previous run left rewritten → AlreadyWrappedError naming the file, the server and `thoughtgate restore`', () => {
    for (const name of Object.keys(FIXTURES)) {
      const once = plan(name);
      if (!once.servers.some((s) => s.kind !== 'skipped')) continue;
      const f = FIXTURES[name]!;
      // a new run has a new port and token: detection must not depend on them
      const again = { ...OPTS, governanceUrl: 'http://127.0.0.1:50000', token: 'other' };
      assert.throws(
        () => planRewrite(once.text, { ...f.target, path: `/cfg/${name}` }, again),
        (e: unknown) => e instanceof AlreadyWrappedError && e.file === `/cfg/${name}` && /thoughtgate restore/.test(e.message),
        name,
      );
    }
  });
  it('recognises our shim by its env alone, or by `shim` with our binary', () => {
    const t = { path: '/x', agent: 'custom' as const, format: 'mcpServers' as const };
    assert.throws(() => planRewrite('{"mcpServers":{"a":{"command":"x","env":{"THOUGHTGATE_SERVER_ID":"a"}}}}', t, OPTS), AlreadyWrappedError);
    assert.throws(() => planRewrite('{"mcpServers":{"a":{"command":"thoughtgate","args":["shim","--","x"]}}}', t, OPTS), AlreadyWrappedError);
    assert.throws(() => planRewrite('{"mcpServers":{"a":{"command":"node","args":["/usr/lib/node_modules/thoughtgate-ts/bin/thoughtgate.js","shim"]}}}', t, OPTS), AlreadyWrappedError);
    // a server that merely has an argument called `shim` is not ours
    assert.equal(planRewrite('{"mcpServers":{"a":{"command":"x","args":["shim"]}}}', t, OPTS).servers[0]!.kind, 'stdio');
  });
  it('skips entries it cannot read, saying why, and leaves them as they are', () => {
    const text = '{"mcpServers":{"a":{"command":"x","args":"not a list"},"b":"str","c":{"type":"ws","url":"x"}}}';
    const p = planRewrite(text, { path: '/x', agent: 'custom', format: 'mcpServers' }, OPTS);
    assert.equal(p.text, text);
    assert.deepEqual(
      p.servers.map((s) => [s.id, s.kind, s.why]),
      [
        ['a', 'skipped', '`args` is not a list of strings'],
        ['b', 'skipped', 'the entry is not an object'],
        ['c', 'skipped', "unknown server type 'ws'"],
      ],
    );
  });
});

describe('rewrite → restore', () => {
  it('gives back the exact bytes for every fixture', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-roundtrip-'));
    for (const [i, [name, f]] of Object.entries(FIXTURES).entries()) {
      const file = join(dir, `config-${i}.json`);
      writeFileSync(file, f.text);
      const original = readFileSync(file);
      const lock = acquireLock(file);
      try {
        const p = planRewrite(original.toString('utf8'), { ...f.target, path: file }, OPTS);
        writeBackup(file, original, p.text);
        assert.equal(readFileSync(file, 'utf8'), p.text, name);
        assert.notEqual(p.text, f.text, name);
        const r = restore(file);
        assert.deepEqual(r, { restored: true, userEdited: false, warnings: [] }, name);
      } finally {
        lock.release();
      }
      assert.ok(readFileSync(file).equals(original), name);
      for (const side of ['backup', 'marker', 'lock']) assert.ok(!existsSync(`${file}.thoughtgate-${side}`), `${name}: ${side} left`);
    }
  });
});

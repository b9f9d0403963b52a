import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigNotFoundError, detectAgent, discoverConfigs } from './agents.js';
import type { AgentType, DiscoverOptions } from './agents.js';

describe('detectAgent', () => {
  const cases: [string, AgentType | undefined][] = [
    ['claude', 'claude-code'],
    ['/usr/local/bin/claude', 'claude-code'],
    ['claude-code', 'claude-code'],
    ['claude-desktop', 'claude-desktop'],
    ['/Applications/Claude.app/Contents/MacOS/Claude', 'claude-desktop'],
    ['cursor', 'cursor'],
    ['/Applications/Cursor.app/Contents/MacOS/Cursor', 'cursor'],
    ['code', 'vscode'],
    ['/usr/bin/code-insiders', 'vscode'],
    ['windsurf', 'windsurf'],
    ['zed', 'zed'],
    ['node', undefined],
    ['/usr/bin/claude-something', undefined],
    ['', undefined],
  ];
  for (const [command, agent] of cases) {
    it(`${command || '(empty)'} → ${agent ?? 'undefined'}`, () => assert.equal(detectAgent(command), agent));
  }
});

/** A fresh HOME with an XDG dir and a project, and a helper to create files in it. */
function sandbox(platform: NodeJS.Platform = 'linux', xdg = true) {
  const root = mkdtempSync(join(tmpdir(), 'tg-agents-'));
  const home = join(root, 'home');
  const cwd = join(root, 'project');
  mkdirSync(home, { recursive: true });
  mkdirSync(cwd, { recursive: true });
  const env: NodeJS.ProcessEnv = xdg ? { XDG_CONFIG_HOME: join(root, 'xdg') } : {};
  const opts: DiscoverOptions = { cwd, home, env, platform };
  const touch = (...parts: string[]): string => {
    const p = join(...parts);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, '{}');
    return p;
  };
  return { root, home, cwd, env, opts, touch };
}

const paths = (agent: AgentType, opts: DiscoverOptions) => discoverConfigs(agent, opts).map((t) => t.path);

describe('discoverConfigs on Linux', () => {
  it('finds nothing when no file exists', () => {
    const s = sandbox();
    for (const agent of ['claude-code', 'claude-desktop', 'cursor', 'vscode', 'windsurf', 'zed', 'custom'] as const) {
      assert.deepEqual(discoverConfigs(agent, s.opts), [], agent);
    }
  });

  it('Claude Code: ~/.claude.json (with this project as key) and ./.mcp.json', () => {
    const s = sandbox();
    const user = s.touch(s.home, '.claude.json');
    const project = s.touch(s.cwd, '.mcp.json');
    assert.deepEqual(discoverConfigs('claude-code', s.opts), [
      { path: user, agent: 'claude-code', format: 'claude-code-projects', projectKey: s.cwd },
      { path: project, agent: 'claude-code', format: 'mcpServers' },
    ]);
  });

  it('Claude Code honours CLAUDE_CONFIG_DIR', () => {
    const s = sandbox();
    s.touch(s.home, '.claude.json');
    const moved = s.touch(s.root, 'claude-dir', '.claude.json');
    assert.deepEqual(paths('claude-code', { ...s.opts, env: { ...s.env, CLAUDE_CONFIG_DIR: join(s.root, 'claude-dir') } }), [moved]);
  });

  it('Claude Desktop and custom: $XDG_CONFIG_HOME/Claude/claude_desktop_config.json', () => {
    const s = sandbox();
    const f = s.touch(s.env.XDG_CONFIG_HOME!, 'Claude', 'claude_desktop_config.json');
    s.touch(s.home, '.config', 'Claude', 'claude_desktop_config.json'); // shadowed by XDG
    assert.deepEqual(discoverConfigs('claude-desktop', s.opts), [{ path: f, agent: 'claude-desktop', format: 'mcpServers' }]);
    assert.deepEqual(discoverConfigs('custom', s.opts), [{ path: f, agent: 'custom', format: 'mcpServers' }]);
  });

  it('falls back to ~/.config without XDG_CONFIG_HOME', () => {
    const s = sandbox('linux', false);
    const f = s.touch(s.home, '.config', 'Claude', 'claude_desktop_config.json');
    assert.deepEqual(paths('claude-desktop', s.opts), [f]);
  });

  it('Cursor: user and project files', () => {
    const s = sandbox();
    const user = s.touch(s.home, '.cursor', 'mcp.json');
    const project = s.touch(s.cwd, '.cursor', 'mcp.json');
    assert.deepEqual(paths('cursor', s.opts), [user, project]);
  });

  it('lists a file reached twice only once (cwd is HOME)', () => {
    const s = sandbox();
    const user = s.touch(s.home, '.cursor', 'mcp.json');
    assert.deepEqual(paths('cursor', { ...s.opts, cwd: s.home }), [user]);
  });

  it('lists a project file that links to the user file only once', () => {
    const s = sandbox();
    const user = s.touch(s.home, '.cursor', 'mcp.json');
    mkdirSync(join(s.cwd, '.cursor'));
    symlinkSync(user, join(s.cwd, '.cursor', 'mcp.json'));
    assert.deepEqual(paths('cursor', s.opts), [user]);
  });

  it('VS Code: user-level Code/User/mcp.json (both editions) and ./.vscode/mcp.json, format `servers`', () => {
    const s = sandbox();
    const stable = s.touch(s.env.XDG_CONFIG_HOME!, 'Code', 'User', 'mcp.json');
    const insiders = s.touch(s.env.XDG_CONFIG_HOME!, 'Code - Insiders', 'User', 'mcp.json');
    const project = s.touch(s.cwd, '.vscode', 'mcp.json');
    const found = discoverConfigs('vscode', s.opts);
    assert.deepEqual(found.map((t) => t.path), [stable, insiders, project]);
    assert.ok(found.every((t) => t.format === 'servers'));
  });

  it('Windsurf: ~/.codeium/windsurf/mcp_config.json', () => {
    const s = sandbox();
    const f = s.touch(s.home, '.codeium', 'windsurf', 'mcp_config.json');
    assert.deepEqual(discoverConfigs('windsurf', s.opts), [{ path: f, agent: 'windsurf', format: 'mcpServers' }]);
  });

  it('Zed: $XDG_CONFIG_HOME/zed/settings.json and the project’s .zed/settings.json, format `context_servers`', () => {
    const s = sandbox();
    const user = s.touch(s.env.XDG_CONFIG_HOME!, 'zed', 'settings.json');
    const project = s.touch(s.cwd, '.zed', 'settings.json');
    assert.deepEqual(discoverConfigs('zed', s.opts), [
      { path: user, agent: 'zed', format: 'context_servers' },
      { path: project, agent: 'zed', format: 'context_servers' },
    ]);
  });

  it('ignores a directory where a file is expected', () => {
    const s = sandbox();
    mkdirSync(join(s.home, '.codeium', 'windsurf', 'mcp_config.json'), { recursive: true });
    assert.deepEqual(paths('windsurf', s.opts), []);
  });
});

describe('discoverConfigs on macOS', () => {
  it('Claude Desktop and VS Code live in ~/Library/Application Support; XDG is not used there', () => {
    const s = sandbox('darwin');
    s.touch(s.env.XDG_CONFIG_HOME!, 'Claude', 'claude_desktop_config.json');
    const desktop = s.touch(s.home, 'Library', 'Application Support', 'Claude', 'claude_desktop_config.json');
    const code = s.touch(s.home, 'Library', 'Application Support', 'Code', 'User', 'mcp.json');
    assert.deepEqual(paths('claude-desktop', s.opts), [desktop]);
    assert.deepEqual(paths('vscode', s.opts), [code]);
  });
  it('Zed uses ~/.config/zed there too', () => {
    const s = sandbox('darwin');
    const f = s.touch(s.home, '.config', 'zed', 'settings.json');
    assert.deepEqual(paths('zed', s.opts), [f]);
  });
});

describe('discoverConfigs with --config-path', () => {
  it('replaces discovery with that one file, resolved against cwd, format from the agent type', () => {
    const s = sandbox();
    s.touch(s.home, '.cursor', 'mcp.json');
    const f = s.touch(s.cwd, 'my-config.json');
    assert.deepEqual(discoverConfigs('cursor', { ...s.opts, configPath: 'my-config.json' }), [{ path: f, agent: 'cursor', format: 'mcpServers' }]);
    assert.equal(discoverConfigs('vscode', { ...s.opts, configPath: f })[0]!.format, 'servers');
    assert.equal(discoverConfigs('zed', { ...s.opts, configPath: f })[0]!.format, 'context_servers');
    assert.equal(discoverConfigs('custom', { ...s.opts, configPath: f })[0]!.format, 'mcpServers');
  });
  it('a Claude Code ~/.claude.json keeps its project key', () => {
    const s = sandbox();
    const f = s.touch(s.root, 'elsewhere', '.claude.json');
    assert.deepEqual(discoverConfigs('claude-code', { ...s.opts, configPath: f }), [
      { path: f, agent: 'claude-code', format: 'claude-code-projects', projectKey: s.cwd },
    ]);
  });
  it('a file that does not exist → ConfigNotFoundError', () => {
    const s = sandbox();
    assert.throws(
      () => discoverConfigs('custom', { ...s.opts, configPath: 'missing.json' }),
      (e: unknown) => e instanceof ConfigNotFoundError && e.file === join(s.cwd, 'missing.json') && /does not exist/.test(e.message),
    );
  });
});

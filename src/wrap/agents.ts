// Which agent a command launches, and where that agent keeps its MCP server config.
// Paths follow each agent's own conventions: XDG on Linux (`$XDG_CONFIG_HOME`, else
// ~/.config), ~/Library/Application Support on macOS, dot-folders in HOME and the project.

import { statSync, realpathSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

export type AgentType = 'claude-code' | 'claude-desktop' | 'cursor' | 'vscode' | 'windsurf' | 'zed' | 'custom';

export const AGENT_TYPES: readonly AgentType[] = ['claude-code', 'claude-desktop', 'cursor', 'vscode', 'windsurf', 'zed', 'custom'];

/**
 * Where the servers live inside a file:
 * - `mcpServers`: top-level `mcpServers` (Claude Desktop, Cursor, Windsurf, `.mcp.json`, custom)
 * - `servers`: VS Code's `mcp.json`
 * - `context_servers`: Zed's settings.json
 * - `claude-code-projects`: ~/.claude.json — top-level `mcpServers` (user scope) and
 *   `projects[projectKey].mcpServers` (local scope)
 */
export type ConfigFormat = 'mcpServers' | 'servers' | 'context_servers' | 'claude-code-projects';

export interface ConfigTarget {
  path: string;
  agent: AgentType;
  format: ConfigFormat;
  /** for `claude-code-projects`: the absolute project directory keying `projects` */
  projectKey?: string;
}

export interface DiscoverOptions {
  cwd: string;
  home: string;
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  /** `--config-path`: replaces discovery with this one file */
  configPath?: string;
}

/** `--config-path` names a file that is not there: refuse rather than wrap nothing. */
export class ConfigNotFoundError extends Error {
  readonly code = 'TG_CONFIG_NOT_FOUND';
  constructor(readonly file: string) {
    super(`config file ${file} does not exist (check --config-path, or leave it out to let thoughtgate find the agent's config)`);
    this.name = 'ConfigNotFoundError';
  }
}

const BY_NAME: Record<string, AgentType> = {
  claude: 'claude-code',
  'claude-code': 'claude-code',
  'claude-desktop': 'claude-desktop',
  cursor: 'cursor',
  code: 'vscode',
  'code-insiders': 'vscode',
  windsurf: 'windsurf',
  zed: 'zed',
  // Arch and some other distributions ship Zed's CLI under this name
  zeditor: 'zed',
};

/** The agent a command launches, from its basename; undefined means `--agent-type` is needed. */
export function detectAgent(command: string): AgentType | undefined {
  const name = basename(command.replace(/[\\/]+$/, ''));
  // The macOS app bundle runs …/Claude.app/Contents/MacOS/Claude: that is Desktop, not the CLI.
  if (name.includes('Claude') && /\.app([\\/]|$)/.test(command)) return 'claude-desktop';
  return BY_NAME[name.toLowerCase().replace(/\.(exe|cmd)$/, '')];
}

/** The format of a file named with `--config-path`, from the agent type (and, for Claude Code, the file name). */
function formatFor(agent: AgentType, path: string): ConfigFormat {
  switch (agent) {
    case 'vscode':
      return 'servers';
    case 'zed':
      return 'context_servers';
    case 'claude-code':
      // ~/.claude.json holds per-project servers too; a `.mcp.json` is plain mcpServers
      return basename(path) === '.claude.json' ? 'claude-code-projects' : 'mcpServers';
    default:
      return 'mcpServers';
  }
}

/** The user's config directory: XDG on Linux and the BSDs, Application Support on macOS. */
function appConfigDir(o: DiscoverOptions): string {
  if (o.platform === 'darwin') return join(o.home, 'Library', 'Application Support');
  const xdg = o.env.XDG_CONFIG_HOME;
  // the XDG spec says a relative value is invalid and must be ignored
  return xdg && xdg.startsWith('/') ? xdg : join(o.home, '.config');
}

/** Zed uses ~/.config/zed on macOS too, and honours XDG_CONFIG_HOME on Linux. */
function zedConfigDir(o: DiscoverOptions): string {
  if (o.platform === 'darwin') return join(o.home, '.config', 'zed');
  return join(appConfigDir(o), 'zed');
}

function candidates(agent: AgentType, o: DiscoverOptions): ConfigTarget[] {
  const cwd = resolve(o.cwd);
  const t = (path: string, format: ConfigFormat, projectKey?: string): ConfigTarget =>
    projectKey === undefined ? { path, agent, format } : { path, agent, format, projectKey };
  switch (agent) {
    case 'claude-code': {
      const dir = o.env.CLAUDE_CONFIG_DIR || o.home;
      return [t(join(dir, '.claude.json'), 'claude-code-projects', cwd), t(join(cwd, '.mcp.json'), 'mcpServers')];
    }
    case 'claude-desktop':
    case 'custom':
      return [t(join(appConfigDir(o), 'Claude', 'claude_desktop_config.json'), 'mcpServers')];
    case 'cursor':
      return [t(join(o.home, '.cursor', 'mcp.json'), 'mcpServers'), t(join(cwd, '.cursor', 'mcp.json'), 'mcpServers')];
    case 'vscode':
      // both editions: `code` and `code-insiders` map to one agent type
      return [
        t(join(appConfigDir(o), 'Code', 'User', 'mcp.json'), 'servers'),
        t(join(appConfigDir(o), 'Code - Insiders', 'User', 'mcp.json'), 'servers'),
        t(join(cwd, '.vscode', 'mcp.json'), 'servers'),
      ];
    case 'windsurf':
      return [t(join(o.home, '.codeium', 'windsurf', 'mcp_config.json'), 'mcpServers')];
    case 'zed':
      return [t(join(zedConfigDir(o), 'settings.json'), 'context_servers'), t(join(cwd, '.zed', 'settings.json'), 'context_servers')];
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * The agent's MCP config files that exist, user level first, then project level. A file
 * reached twice (cwd = HOME, symlinks) is listed once, so it is never locked or backed up twice.
 */
export function discoverConfigs(agent: AgentType, opts: DiscoverOptions): ConfigTarget[] {
  if (opts.configPath !== undefined) {
    const path = resolve(opts.cwd, opts.configPath);
    if (!isFile(path)) throw new ConfigNotFoundError(path);
    const format = formatFor(agent, path);
    return [format === 'claude-code-projects' ? { path, agent, format, projectKey: resolve(opts.cwd) } : { path, agent, format }];
  }
  const seen = new Set<string>();
  const found: ConfigTarget[] = [];
  for (const c of candidates(agent, opts)) {
    if (!isFile(c.path)) continue;
    const real = realOrSelf(c.path);
    if (seen.has(real)) continue;
    seen.add(real);
    found.push(c);
  }
  return found;
}

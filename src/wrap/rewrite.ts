// Rewrites an agent's MCP config so each server runs behind governance: stdio entries launch
// through `thoughtgate shim`, HTTP entries point at the governance service's proxy. Files are
// JSONC (comments, trailing commas); every change is a jsonc-parser `modify` of one key, so
// comments and the formatting of everything we do not touch stay as they were.

import { basename } from 'node:path';
import { applyEdits, findNodeAtLocation, getNodeValue, modify, parseTree, printParseErrorCode } from 'jsonc-parser';
import type { FormattingOptions, Node, ParseError } from 'jsonc-parser';
import type { ConfigTarget } from './agents.js';
import { ENV_GOVERNANCE_TOKEN, ENV_GOVERNANCE_URL, ENV_SERVER_ID } from './protocol.js';

/** Header carrying an HTTP server's real URL to the governance proxy. */
export const HEADER_UPSTREAM = 'x-thoughtgate-upstream';
/** Header carrying the per-run secret the governance service requires. */
export const HEADER_TOKEN = 'x-thoughtgate-token';

const HTTP_TYPES = new Set(['http', 'sse', 'streamable-http', 'streamableHttp']);
const PARSE_OPTIONS = { allowTrailingComma: true, disallowComments: false, allowEmptyContent: false };

export interface RewriteOptions {
  /** the program the agent launches instead of the server (e.g. process.execPath) */
  shimCommand: string;
  /** its first arguments, e.g. [absolute path of bin/thoughtgate.js, 'shim'] */
  shimArgsPrefix: string[];
  governanceUrl: string;
  token: string;
  profile: 'production' | 'development';
}

export interface PlannedServer {
  /** the entry's key: the server id governance rules target with `source:` */
  id: string;
  kind: 'stdio' | 'http' | 'skipped';
  /** why an entry was skipped */
  why?: string;
  /** where the entry sits in the file, e.g. ['projects', '/home/me/app', 'mcpServers', 'fs'] */
  path: string[];
  /** for HTTP entries: the agent's transport (`type`), when the entry names one */
  transport?: string;
}

export interface RewritePlan {
  /** the new file text (equal to the input when nothing needed rewriting) */
  text: string;
  servers: PlannedServer[];
}

/** A config that cannot be parsed: it is never modified. */
export class ConfigParseError extends Error {
  readonly code = 'TG_CONFIG_PARSE';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly problem: string,
  ) {
    super(`${file}:${line}:${column}: ${problem}. The file was left untouched; fix it (or point --config-path elsewhere) and run again.`);
    this.name = 'ConfigParseError';
  }
}

/** The config already runs its servers through thoughtgate, most likely left by a crashed run. */
export class AlreadyWrappedError extends Error {
  readonly code = 'TG_ALREADY_WRAPPED';
  constructor(
    readonly file: string,
    readonly serverId: string,
  ) {
    super(
      `server '${serverId}' in ${file} already runs through thoughtgate (a previous run did not restore it). ` +
        `Run \`thoughtgate restore --config-path ${file}\` to put the original back, then try again.`,
    );
    this.name = 'AlreadyWrappedError';
  }
}

const BOM = '\uFEFF';

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * Parses JSONC text whose top level must be an object. Offsets in the returned tree are
 * relative to `body` (the text after a UTF-8 BOM, if any).
 */
export function parseConfigText(text: string, file: string): { root: Node; bom: string; body: string } {
  const bom = text.startsWith(BOM) ? BOM : '';
  const body = text.slice(bom.length);
  const errors: ParseError[] = [];
  const root = parseTree(body, errors, PARSE_OPTIONS);
  if (errors.length > 0) {
    const e = errors[0]!;
    const { line, column } = lineAndColumn(body, e.offset);
    throw new ConfigParseError(file, line, column, describeParseError(e));
  }
  if (!root) throw new ConfigParseError(file, 1, 1, 'the file is empty; expected a JSON object');
  if (root.type !== 'object') throw new ConfigParseError(file, 1, 1, `the top level is ${article(root.type)}; expected a JSON object`);
  return { root, bom, body };
}

function describeParseError(e: ParseError): string {
  const readable: Record<string, string> = {
    InvalidSymbol: 'unexpected character',
    InvalidNumberFormat: 'invalid number',
    PropertyNameExpected: 'expected a property name in double quotes',
    ValueExpected: 'expected a value',
    ColonExpected: "expected ':'",
    CommaExpected: "expected ','",
    CloseBraceExpected: "expected '}'",
    CloseBracketExpected: "expected ']'",
    EndOfFileExpected: 'unexpected text after the end of the JSON value',
    InvalidCommentToken: 'invalid comment',
    UnexpectedEndOfComment: 'unterminated comment',
    UnexpectedEndOfString: 'unterminated string',
    UnexpectedEndOfNumber: 'unterminated number',
    InvalidUnicode: 'invalid unicode escape',
    InvalidEscapeCharacter: 'invalid escape character',
    InvalidCharacter: 'invalid character in a string',
  };
  const name = printParseErrorCode(e.error);
  return `invalid JSON: ${readable[name] ?? name}`;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** The file's own indentation and line ending, so inserted text looks like its neighbours. */
export function detectFormatting(text: string): FormattingOptions {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  let smallest: string | undefined;
  // property lines at depth 1 have the smallest indentation of all property lines
  for (const m of text.matchAll(/^([ \t]+)"/gm)) {
    if (smallest === undefined || m[1]!.length < smallest.length) smallest = m[1]!;
  }
  if (smallest === undefined) return { tabSize: 2, insertSpaces: true, eol };
  if (smallest.startsWith('\t')) return { tabSize: 4, insertSpaces: false, eol };
  return { tabSize: Math.min(Math.max(smallest.length, 1), 8), insertSpaces: true, eol };
}

/** Where a target's servers live: one or two objects mapping server ids to entries. */
function containerPaths(target: ConfigTarget): string[][] {
  switch (target.format) {
    case 'mcpServers':
      return [['mcpServers']];
    case 'servers':
      return [['servers']];
    case 'context_servers':
      return [['context_servers']];
    case 'claude-code-projects':
      return target.projectKey === undefined ? [['mcpServers']] : [['mcpServers'], ['projects', target.projectKey, 'mcpServers']];
  }
}

/**
 * Every server entry in a parsed config, whatever the agent: the places any supported format
 * keeps servers. Restore uses this to find what a run rewrote without knowing the agent.
 */
export function serverEntryPaths(root: Node): string[][] {
  const paths: string[][] = [];
  const addEntries = (container: string[]): void => {
    const node = findNodeAtLocation(root, container);
    if (node?.type !== 'object') return;
    for (const prop of node.children ?? []) {
      const key = prop.children?.[0]?.value;
      if (typeof key === 'string') paths.push([...container, key]);
    }
  };
  for (const top of ['mcpServers', 'servers', 'context_servers']) addEntries([top]);
  const projects = findNodeAtLocation(root, ['projects']);
  if (projects?.type === 'object') {
    for (const prop of projects.children ?? []) {
      const key = prop.children?.[0]?.value;
      if (typeof key === 'string') addEntries(['projects', key, 'mcpServers']);
    }
  }
  return paths;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Entry = { [k: string]: Json };

const isObject = (v: unknown): v is Entry => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** One key to set, relative to the entry. */
type Change = { at: string[]; value: Json };

type Classified =
  | { kind: 'stdio'; changes: Change[] }
  | { kind: 'http'; changes: Change[]; transport?: string }
  | { kind: 'skipped'; why: string };

/** A command or args that are already our shim, or env that a run put there. */
function isOurShim(command: string, args: string[], env: Entry | undefined, opts: RewriteOptions): boolean {
  if (env && ENV_SERVER_ID in env) return true;
  const ours = (s: string): boolean => {
    const name = basename(s);
    return name === 'thoughtgate' || name === 'thoughtgate.js' || (opts.shimArgsPrefix[0] !== undefined && s === opts.shimArgsPrefix[0]);
  };
  if (basename(command) === 'thoughtgate') return true;
  return args.includes('shim') && [command, ...args].some(ours);
}

function shimArgs(id: string, command: string, args: string[], opts: RewriteOptions): string[] {
  return [...opts.shimArgsPrefix, '--server-id', id, '--governance', opts.governanceUrl, '--profile', opts.profile, '--', command, ...args];
}

function envChanges(prefix: string[], id: string, opts: RewriteOptions): Change[] {
  return [
    { at: [...prefix, ENV_SERVER_ID], value: id },
    { at: [...prefix, ENV_GOVERNANCE_URL], value: opts.governanceUrl },
    { at: [...prefix, ENV_GOVERNANCE_TOKEN], value: opts.token },
  ];
}

function classify(file: string, id: string, entry: Json, opts: RewriteOptions): Classified {
  if (!isObject(entry)) return { kind: 'skipped', why: 'the entry is not an object' };
  const type = typeof entry.type === 'string' ? entry.type : undefined;
  // Windsurf names a remote server's address `serverUrl`; everyone else `url`
  const urlKey = 'url' in entry ? 'url' : 'serverUrl' in entry ? 'serverUrl' : undefined;
  const isHttp = type !== undefined ? HTTP_TYPES.has(type) : entry.command === undefined && urlKey !== undefined;

  if (isHttp && type === 'sse') {
    // The 2024 HTTP+SSE transport (GET /sse + POST /messages) is not proxied: left as it is and
    // named in wrap's summary as not governed, rather than broken by a rewrite.
    return { kind: 'skipped', why: "legacy 'sse' transport: not governed (use Streamable HTTP)" };
  }
  if (isHttp) {
    const url = urlKey ? entry[urlKey] : undefined;
    if (typeof url !== 'string') return { kind: 'skipped', why: `a ${type ?? 'remote'} server without a url` };
    const headers = entry.headers;
    if (headers !== undefined && !isObject(headers)) return { kind: 'skipped', why: '`headers` is not an object' };
    if (headers && Object.keys(headers).some((h) => h.toLowerCase() === HEADER_UPSTREAM)) throw new AlreadyWrappedError(file, id);
    if (url.startsWith(`${trimSlash(opts.governanceUrl)}/http/`)) throw new AlreadyWrappedError(file, id);
    const changes: Change[] = [
      { at: [urlKey!], value: `${trimSlash(opts.governanceUrl)}/http/${encodeURIComponent(id)}/mcp` },
      { at: ['headers', HEADER_UPSTREAM], value: url },
      { at: ['headers', HEADER_TOKEN], value: opts.token },
    ];
    return type === undefined ? { kind: 'http', changes } : { kind: 'http', changes, transport: type };
  }

  if (type !== undefined && type !== 'stdio') return { kind: 'skipped', why: `unknown server type '${type}'` };
  const command = entry.command;
  // Zed's older shape: "command": {"path", "args", "env"}
  if (isObject(command)) {
    const { path, args = [], env } = command;
    if (typeof path !== 'string') return { kind: 'skipped', why: '`command.path` is not a string' };
    if (!isStringArray(args)) return { kind: 'skipped', why: '`command.args` is not a list of strings' };
    if (env !== undefined && !isObject(env)) return { kind: 'skipped', why: '`command.env` is not an object' };
    if (isOurShim(path, args, env, opts)) throw new AlreadyWrappedError(file, id);
    return {
      kind: 'stdio',
      changes: [
        { at: ['command', 'path'], value: opts.shimCommand },
        { at: ['command', 'args'], value: shimArgs(id, path, args, opts) },
        ...envChanges(['command', 'env'], id, opts),
      ],
    };
  }
  if (command === undefined) {
    // e.g. a Zed server provided by an extension: Zed launches it, we cannot see how
    return { kind: 'skipped', why: 'no `command` or `url` in the entry' };
  }
  if (typeof command !== 'string') return { kind: 'skipped', why: '`command` is not a string' };
  const args = entry.args ?? [];
  if (!isStringArray(args)) return { kind: 'skipped', why: '`args` is not a list of strings' };
  const env = entry.env;
  if (env !== undefined && !isObject(env)) return { kind: 'skipped', why: '`env` is not an object' };
  if (isOurShim(command, args, env, opts)) throw new AlreadyWrappedError(file, id);
  return {
    kind: 'stdio',
    changes: [
      { at: ['command'], value: opts.shimCommand },
      { at: ['args'], value: shimArgs(id, command, args, opts) },
      ...envChanges(['env'], id, opts),
    ],
  };
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/**
 * The rewritten text of one config file and what happened to each server. Throws
 * ConfigParseError for a file that cannot be parsed and AlreadyWrappedError for one that
 * still carries a previous run's rewrite; in both cases nothing is planned.
 * `${VAR}` references are left for the agent to expand: no secret is ever written expanded.
 */
export function planRewrite(text: string, target: ConfigTarget, opts: RewriteOptions): RewritePlan {
  const { root, bom, body } = parseConfigText(text, target.path);
  const servers: PlannedServer[] = [];
  const work: { entryPath: string[]; changes: Change[] }[] = [];

  for (const container of containerPaths(target)) {
    const node = findNodeAtLocation(root, container);
    if (!node || node.type === 'null') continue;
    if (node.type !== 'object') {
      const { line, column } = lineAndColumn(body, node.offset);
      throw new ConfigParseError(target.path, line, column, `\`${container.join('.')}\` must be an object mapping server names to their settings`);
    }
    for (const prop of node.children ?? []) {
      const id = prop.children?.[0]?.value;
      const valueNode = prop.children?.[1];
      if (typeof id !== 'string' || !valueNode) continue;
      const entryPath = [...container, id];
      const c = classify(target.path, id, getNodeValue(valueNode) as Json, opts);
      if (c.kind === 'skipped') {
        servers.push({ id, kind: 'skipped', why: c.why, path: entryPath });
        continue;
      }
      servers.push(c.kind === 'http' && c.transport ? { id, kind: 'http', path: entryPath, transport: c.transport } : { id, kind: c.kind, path: entryPath });
      work.push({ entryPath, changes: c.changes });
    }
  }

  const formattingOptions = detectFormatting(body);
  let out = body;
  for (const { entryPath, changes } of work) {
    for (const change of changes) {
      out = applyEdits(out, modify(out, [...entryPath, ...change.at], change.value, { formattingOptions }));
    }
  }
  const result = bom + out;
  verifyRewrite(result, target.path, work);
  return { text: result, servers };
}

/** Reads the result back: every planned key must hold the planned value, or we refuse to write it. */
function verifyRewrite(text: string, file: string, work: { entryPath: string[]; changes: Change[] }[]): void {
  let root: Node;
  try {
    root = parseConfigText(text, file).root;
  } catch (e) {
    throw new Error(`internal error: the rewritten ${file} does not parse (${(e as Error).message}); nothing was written`);
  }
  for (const { entryPath, changes } of work) {
    for (const change of changes) {
      const node = findNodeAtLocation(root, [...entryPath, ...change.at]);
      if (!node || JSON.stringify(getNodeValue(node)) !== JSON.stringify(change.value)) {
        throw new Error(`internal error: rewriting ${[...entryPath, ...change.at].join('.')} in ${file} did not take; nothing was written`);
      }
    }
  }
}

// Newline-delimited JSON-RPC for stdio: a bounded line splitter and a line decoder that
// applies exactly the HTTP body rules (decode.ts), so both transports judge alike.

import { GovError } from '../core/errors.js';
import type { JsonRpcId, JsonRpcMessage } from '../core/jsonrpc.js';
import { checkMessage, framingReason, parseStrict, readableId, reject, type FramingReason } from './decode.js';

const LF = 0x0a;
const CR = 0x0d;

/**
 * Splits a byte stream on `\n` (dropping a preceding `\r`) and skips empty lines. A line is
 * at most `maxLineBytes` bytes before its `\n`; a longer one is discarded without being
 * buffered and reported once, with its size, when its newline (or the stream end) arrives.
 * Lines wholly inside one chunk are zero-copy views of it.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private partLen = 0;
  private dropping = false;
  private dropped = 0;

  constructor(
    private readonly maxLineBytes: number,
    private readonly onLine: (line: Buffer) => void,
    private readonly onOversize: (bytesDropped: number) => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(LF, start);
      if (nl === -1) break;
      this.finishLine(chunk, start, nl);
      start = nl + 1;
    }
    if (start < chunk.length) this.keep(chunk.subarray(start));
  }

  end(): void {
    if (this.dropping) this.reportDrop();
    else if (this.partLen > 0) this.emit(this.take(undefined));
  }

  private finishLine(chunk: Buffer, start: number, nl: number): void {
    const len = this.partLen + (nl - start);
    if (this.dropping || len > this.maxLineBytes) {
      this.dropped += len;
      this.parts = [];
      this.partLen = 0;
      this.reportDrop();
      return;
    }
    this.emit(this.take(chunk.subarray(start, nl)));
  }

  private keep(tail: Buffer): void {
    if (this.dropping || this.partLen + tail.length > this.maxLineBytes) {
      this.dropping = true;
      this.dropped += this.partLen + tail.length;
      this.parts = [];
      this.partLen = 0;
      return;
    }
    this.parts.push(tail);
    this.partLen += tail.length;
  }

  private take(last: Buffer | undefined): Buffer {
    let line: Buffer;
    if (this.parts.length === 0) line = last ?? Buffer.alloc(0);
    else {
      if (last !== undefined) this.parts.push(last);
      line = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    }
    this.parts = [];
    this.partLen = 0;
    return line;
  }

  private emit(line: Buffer): void {
    const n = line.length > 0 && line[line.length - 1] === CR ? line.length - 1 : line.length;
    if (n > 0) this.onLine(n === line.length ? line : line.subarray(0, n));
  }

  private reportDrop(): void {
    const n = this.dropped;
    this.dropping = false;
    this.dropped = 0;
    this.onOversize(n);
  }
}

/** Line failures; oversize lines never get here (LineSplitter drops them). */
export type LineErrorType = Exclude<FramingReason, 'message_too_large'>;

export type LineResult =
  | { ok: true; message: JsonRpcMessage | JsonRpcMessage[] }
  | { ok: false; errorType: LineErrorType; id: JsonRpcId | undefined; error: GovError };

export interface LineOptions {
  /** batches are legal only on 2025-03-26 sessions */
  allowBatch: boolean;
  maxDepth: number;
  /** default 100 */
  maxBatchSize?: number;
}

/** Decodes one stdio line. A batch is accepted only if every element is valid. */
export function decodeLine(line: Buffer, opts: LineOptions): LineResult {
  let parsed;
  try {
    parsed = parseStrict(line, opts.maxDepth);
  } catch (e) {
    return failure(e, undefined);
  }
  const { bytes, value, scan } = parsed;
  if (!Array.isArray(value)) {
    try {
      return { ok: true, message: checkMessage(value, bytes, scan.idAt) };
    } catch (e) {
      return failure(e, idOrUndefined(value, bytes, scan.idAt));
    }
  }
  if (!opts.allowBatch) return failure(reject('unsupported_batch', 'batches are not supported on this session'), undefined);
  if (value.length === 0) return failure(reject('invalid_request', 'Empty batch is not allowed'), undefined);
  const max = opts.maxBatchSize ?? 100;
  if (value.length > max) return failure(reject('invalid_request', `Batch size ${value.length} exceeds maximum of ${max}`), undefined);
  const out: JsonRpcMessage[] = new Array(value.length);
  for (let k = 0; k < value.length; k++) {
    const idAt = scan.elementIdAt[k]!;
    try {
      out[k] = checkMessage(value[k], bytes, idAt);
    } catch (e) {
      return failure(e, idOrUndefined(value[k], bytes, idAt));
    }
  }
  return { ok: true, message: out };
}

function idOrUndefined(v: unknown, bytes: Uint8Array, idAt: number): JsonRpcId | undefined {
  const id = readableId(v, bytes, idAt);
  return id === null ? undefined : id;
}

function failure(e: unknown, id: JsonRpcId | undefined): LineResult {
  if (!(e instanceof GovError)) throw e; // not bad input: a bug
  return { ok: false, errorType: framingReason(e) as LineErrorType, id, error: e };
}

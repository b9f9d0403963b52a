// Hot-path metric families that render through a prom-client Registry.
//
// Measured (metrics.bench.ts): prom-client's `inc({labels})` costs ~300 ns a call, and its
// `labels(a,b,c)` children are not cached and cost more; caching them in a Map keyed by a
// joined label string is slower still (the child re-hashes its labels on every call).
// Here each label combination is a cell found through nested Maps keyed by the raw label
// values, so a recording allocates nothing and costs a few Map lookups and an add.
// Rendering stays with prom-client: these objects implement what Registry reads
// (name, help, type, aggregator, get(), reset()), in the shape getMetricsAsJSON documents.

export type LabelKey = string | number;
type Labels = Record<string, string>;

export interface ScalarCell {
  readonly labels: Labels;
  value: number;
}

export interface HistogramCell {
  readonly labels: Labels;
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

interface Sample {
  labels: Labels;
  value: number;
  metricName?: string;
}

/** Caps the distinct values a label may take (the original's cardinality guard). */
export class LabelGuard {
  private readonly seen = new Set<string>();
  constructor(
    readonly limit: number,
    readonly maxLength = 128,
    readonly overflow = '__other__',
  ) {}

  admit(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.limit || value.length > this.maxLength) return this.overflow;
    this.seen.add(value);
    return value;
  }

  get size(): number {
    return this.seen.size;
  }
}

type Node<C> = Map<LabelKey, Node<C> | C>;

abstract class Family<C extends { labels: Labels }> {
  readonly aggregator = 'sum';
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  protected root: Node<C> = new Map();
  protected all: C[] = [];
  private solo: C | undefined;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  protected abstract make(labels: Labels): C;

  /** The cell of an unlabelled metric. */
  c0(): C {
    return this.solo ?? (this.solo = this.create([]));
  }

  c1(a: LabelKey): C {
    const c = this.root.get(a) as C | undefined;
    return c !== undefined ? c : this.insert(this.root, a, [a]);
  }

  c2(a: LabelKey, b: LabelKey): C {
    let n = this.root.get(a) as Node<C> | undefined;
    if (n === undefined) this.root.set(a, (n = new Map()));
    const c = n.get(b) as C | undefined;
    return c !== undefined ? c : this.insert(n, b, [a, b]);
  }

  c3(a: LabelKey, b: LabelKey, c: LabelKey): C {
    let n = this.root.get(a) as Node<C> | undefined;
    if (n === undefined) this.root.set(a, (n = new Map()));
    let m = n.get(b) as Node<C> | undefined;
    if (m === undefined) n.set(b, (m = new Map()));
    const cell = m.get(c) as C | undefined;
    return cell !== undefined ? cell : this.insert(m, c, [a, b, c]);
  }

  /** Every cell recorded so far (for scrape-time computations such as one-hot gauges). */
  cells(): readonly C[] {
    return this.all;
  }

  reset(): void {
    this.root = new Map();
    this.all = [];
    this.solo = undefined;
  }

  private insert(node: Node<C>, key: LabelKey, values: LabelKey[]): C {
    const cell = this.create(values);
    node.set(key, cell);
    return cell;
  }

  private create(values: LabelKey[]): C {
    // Cold path: a wrong arity is a programming error, caught on first use.
    if (values.length !== this.labelNames.length) {
      throw new Error(`${this.name}: expected ${this.labelNames.length} labels, got ${values.length}`);
    }
    const labels: Labels = {};
    for (let i = 0; i < values.length; i++) labels[this.labelNames[i]!] = String(values[i]);
    const cell = this.make(labels);
    this.all.push(cell);
    return cell;
  }
}

/** A counter or gauge. Unlabelled ones always render (as 0 until recorded), like prom-client's. */
export class ScalarFamily extends Family<ScalarCell> {
  constructor(
    readonly type: 'counter' | 'gauge',
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    /** runs at scrape time, before rendering */
    private readonly collect?: (self: ScalarFamily) => void,
  ) {
    super(name, help, labelNames);
    if (labelNames.length === 0) this.c0();
  }

  protected make(labels: Labels): ScalarCell {
    return { labels, value: 0 };
  }

  override reset(): void {
    super.reset();
    if (this.labelNames.length === 0) this.c0();
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    this.collect?.(this);
    const values: Sample[] = this.all.map((c) => ({ labels: c.labels, value: c.value }));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export class HistogramFamily extends Family<HistogramCell> {
  readonly type = 'histogram';
  private readonly bounds: Float64Array;
  private readonly le: string[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames);
    this.bounds = Float64Array.from(buckets);
    this.le = buckets.map(String);
  }

  protected make(labels: Labels): HistogramCell {
    return { labels, counts: new Float64Array(this.bounds.length), sum: 0, count: 0 };
  }

  observe(cell: HistogramCell, v: number): void {
    if (v !== v) return; // NaN would poison _sum forever
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    if (i < b.length) cell.counts[i]!++;
    cell.sum += v;
    cell.count++;
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    const values: Sample[] = [];
    const bucket = `${this.name}_bucket`;
    for (const c of this.all) {
      let acc = 0;
      for (let i = 0; i < this.le.length; i++) {
        acc += c.counts[i]!;
        values.push({ labels: { le: this.le[i]!, ...c.labels }, value: acc, metricName: bucket });
      }
      values.push({ labels: { le: '+Inf', ...c.labels }, value: c.count, metricName: bucket });
      values.push({ labels: c.labels, value: c.sum, metricName: `${this.name}_sum` });
      values.push({ labels: c.labels, value: c.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

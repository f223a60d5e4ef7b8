// A Prometheus histogram for the decision path: prom-client's Histogram makes ~250 bytes of
// garbage per observation (a closure, a labels-and-value object, a label hash string), and every
// decision makes two (and its audit commit two more: with one client, a commit per decision).
// This one keeps its counts in arrays, per value of at most one label, and
// makes its samples only when scraped, in the form prom-client's registry renders: the text is
// the same as a prom-client Histogram's for the same observations (lean-histogram.test.ts).
import type { Metric, MetricObjectWithValues, MetricType, MetricValueWithName, Registry } from 'prom-client';

/** Counts of one label value. */
class Series {
  /** Observations per bucket (not cumulative); the last one is +Inf only. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    buckets: number,
    /** As the registry sees them (the same object every scrape: it caches their text by it). */
    readonly labels: Record<string, string>,
  ) {
    this.counts = new Float64Array(buckets + 1);
  }
}

export interface LeanHistogramOptions {
  name: string;
  help: string;
  /** Upper bounds, ascending (the +Inf bucket is implied). */
  buckets: readonly number[];
  /** The one label, if any. */
  labelName?: string;
  registers: Registry[];
}

export class LeanHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: readonly number[];
  readonly #labelName: string | undefined;
  /** By label value ('' without a label), in the order first observed. */
  readonly #series = new Map<string, Series>();

  constructor(o: LeanHistogramOptions) {
    this.name = o.name;
    this.help = o.help;
    this.#bounds = [...o.buckets];
    this.#labelName = o.labelName;
    // Without a label it shows its empty series from the start, as prom-client's does.
    if (this.#labelName === undefined) this.#series.set('', new Series(this.#bounds.length, {}));
    for (const r of o.registers) r.registerMetric(this as unknown as Metric);
  }

  /** Observes `value` (seconds, say) under the label's `labelValue` (ignored without a label). */
  observe(value: number, labelValue = ''): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    let s = this.#series.get(labelValue);
    if (s === undefined) {
      const labels = this.#labelName === undefined ? {} : { [this.#labelName]: labelValue };
      s = new Series(this.#bounds.length, labels);
      this.#series.set(labelValue, s);
    }
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  /** What the registry renders as text (as prom-client's Histogram.getForPromString()): cumulative
   * buckets, +Inf, sum and count per series, the series' labels as shared labels. */
  async getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const bucket = `${this.name}_bucket`;
    const values: MetricValueWithName<string>[] = [];
    for (const s of this.#series.values()) {
      let acc = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        acc += s.counts[i]!;
        values.push(sample({ le: this.#bounds[i]! }, acc, bucket, null, s.labels));
      }
      values.push(sample({ le: '+Inf' }, s.count, bucket, null, s.labels));
      values.push(sample({}, s.sum, `${this.name}_sum`, undefined, s.labels));
      values.push(sample({}, s.count, `${this.name}_count`, undefined, s.labels));
    }
    return {
      name: this.name,
      help: this.help,
      // The registry writes `# TYPE` from this string (prom-client's typings call it an enum).
      type: 'histogram' as unknown as MetricType,
      values,
      aggregator: this.aggregator,
    } as MetricObjectWithValues<MetricValueWithName<string>>;
  }

  /** As prom-client's Histogram.get() (the registry's JSON): each sample's labels with its series'. */
  async get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const data = await this.getForPromString();
    data.values = data.values.map((v) => {
      const { labels, sharedLabels, ...rest } = v as MetricValueWithName<string> & { sharedLabels: object };
      return { ...rest, labels: { ...labels, ...sharedLabels } };
    });
    return data;
  }

  /** Forgets every series (as prom-client's reset(): nothing shows until the next observation). */
  reset(): void {
    this.#series.clear();
  }
}

/** One sample as prom-client's registry reads it (its labels, and the series' as shared labels). */
function sample(
  labels: Record<string, string | number>,
  value: number,
  metricName: string,
  exemplar: null | undefined,
  sharedLabels: Record<string, string>,
): MetricValueWithName<string> {
  return { labels, sharedLabels, value, metricName, exemplar } as MetricValueWithName<string>;
}

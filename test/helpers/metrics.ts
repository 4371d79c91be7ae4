/** Reading one Prometheus metric of a gateway in tests. */
import type { Registry } from 'prom-client';

/** Every sample of `name` as `{ labels, value }`; an unregistered metric is a test error. */
export async function metricSamples(
  registry: Registry,
  name: string,
): Promise<Array<{ labels: Record<string, string | number>; value: number }>> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const { values } = await metric.get();
  return values.map((v) => ({ labels: v.labels as Record<string, string | number>, value: v.value }));
}

/** The value of the sample whose labels include `labels` (0 when there is none yet). */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const samples = await metricSamples(registry, name);
  let sum = 0;
  for (const s of samples) {
    if (Object.entries(labels).every(([k, v]) => String(s.labels[k]) === v)) sum += s.value;
  }
  return sum;
}

/** `{ labelValue: count }` of a counter with one label, zero samples left out. */
export async function countsBy(
  registry: Registry,
  name: string,
  label: string,
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of await metricSamples(registry, name)) {
    if (s.value !== 0) out[String(s.labels[label])] = (out[String(s.labels[label])] ?? 0) + s.value;
  }
  return out;
}

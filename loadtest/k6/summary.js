// Latency histograms that merge across k6 instances. k6's Trend percentiles are computed per
// instance and cannot be combined (an average of p99s is not the p99 of the union), so agents.js
// also counts every latency into fixed buckets (a Counter tagged `le`); handleSummary exports the
// counts, and merge-summaries.mjs adds them bucket by bucket and reads percentiles off the sum.
// Plain ES module without imports: loaded by k6 (agents.js) and by Node (merge-summaries.mjs).

// Upper bounds in ms: 10 steps per decade (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8), 10 ms to 800 s, so a
// percentile read off the buckets is at most one step (≤ 25 %) above the true value.
const STEPS = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8];
export const BUCKET_BOUNDS_MS = [10, 100, 1000, 10000, 100000].flatMap((d) =>
  STEPS.map((s) => Math.round(s * d)),
);

/** The `le` tag of the bucket a value in ms falls in ('inf' above the last bound). */
export function bucketLabel(ms) {
  for (const b of BUCKET_BOUNDS_MS) if (ms <= b) return String(b);
  return 'inf';
}

/** Every `le` label, in order. */
export function bucketLabels() {
  return [...BUCKET_BOUNDS_MS.map(String), 'inf'];
}

/**
 * The q-quantile (0 < q ≤ 1) of bucket counts in bucketLabels() order: the upper bound of the
 * bucket holding it (Infinity when it lies above the last bound), or null when there are no counts.
 */
export function quantileFromCounts(counts, q) {
  const total = counts.reduce((a, c) => a + c, 0);
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i];
    if (seen >= rank) return i < BUCKET_BOUNDS_MS.length ? BUCKET_BOUNDS_MS[i] : Number.POSITIVE_INFINITY;
  }
  return Number.POSITIVE_INFINITY;
}

// ---- the per-instance summary (agents.js handleSummary) and its merge (merge-summaries.mjs) ----

export const SUMMARY_FORMAT = 'fleetgate-k6/1';
/** Why a dial failed (agents.js classifies k6's error text into these). */
export const DIAL_FAILURE_REASONS = ['timeout', 'refused', 'reset', 'tls', 'other'];
/** Histogram name in the summary → the bucket Counter agents.js adds to. */
export const HISTOGRAMS = {
  command_latency_ms: 'fleetgate_command_latency_bucket',
  reconnect_ms: 'fleetgate_reconnect_bucket',
};

/**
 * What one k6 instance measured, in counts that add up across instances: k6's end-of-test data
 * (handleSummary's argument) reduced to counters, rates as passes/fails, histograms as bucket
 * counts and the thresholds that failed. `meta` says which agents the instance ran.
 */
export function summaryReport(summary, meta) {
  const metrics = summary?.metrics || {};
  const counters = {};
  const rates = {};
  const thresholdsFailed = [];
  for (const name of Object.keys(metrics).sort()) {
    const m = metrics[name];
    for (const [expr, t] of Object.entries(m.thresholds || {})) {
      if (t && t.ok === false) thresholdsFailed.push(`${name}: ${expr}`);
    }
    if (name.includes('{le:')) continue; // histogram buckets: below, in order
    if (m.type === 'counter') counters[name] = m.values.count;
    else if (m.type === 'rate') rates[name] = { passes: m.values.passes, fails: m.values.fails };
  }
  const histograms = {};
  for (const [key, metric] of Object.entries(HISTOGRAMS)) {
    const counts = bucketLabels().map((le) => {
      const sub = metrics[`${metric}{le:${le}}`];
      return sub?.values ? sub.values.count : 0;
    });
    histograms[key] = { boundsMs: BUCKET_BOUNDS_MS, counts };
  }
  const durationMs = summary?.state ? summary.state.testRunDurationMs : null;
  return {
    format: SUMMARY_FORMAT,
    scenario: meta.scenario,
    agents: meta.agents,
    instances: 1,
    durationMs,
    sources: [{ idPrefix: meta.idPrefix, agentBase: meta.agentBase, agents: meta.agents }],
    counters,
    rates,
    histograms,
    thresholdsFailed,
  };
}

function addInto(into, from, add) {
  for (const [k, v] of Object.entries(from)) into[k] = k in into ? add(into[k], v) : v;
}

function checkMergeable(reports) {
  if (reports.length === 0) throw new Error('no summaries to merge');
  for (const r of reports) {
    if (!r || r.format !== SUMMARY_FORMAT) throw new Error(`not a ${SUMMARY_FORMAT} summary`);
    if (r.scenario !== reports[0].scenario) {
      throw new Error(`summaries of different scenarios: ${reports[0].scenario} and ${r.scenario}`);
    }
    for (const h of Object.values(r.histograms)) {
      if (h.boundsMs.join(',') !== BUCKET_BOUNDS_MS.join(',')) throw new Error('histogram buckets differ');
    }
  }
  // Two instances running the same AgentIDs were one agent twice to the gateway: refuse.
  const ranges = reports.flatMap((r) => r.sources).sort((x, y) => x.agentBase - y.agentBase);
  for (let i = 1; i < ranges.length; i++) {
    const [p, q] = [ranges[i - 1], ranges[i]];
    if (p.idPrefix === q.idPrefix && p.agentBase + p.agents > q.agentBase) {
      throw new Error(`agents overlap: ${p.idPrefix}${q.agentBase} is in two summaries (AGENT_BASE)`);
    }
  }
}

/** Sums summaries of one run: counts add, histograms add bucket by bucket (never percentiles). */
export function mergeReports(reports) {
  checkMergeable(reports);
  const out = {
    format: SUMMARY_FORMAT,
    scenario: reports[0].scenario,
    agents: 0,
    instances: 0,
    durationMs: 0,
    sources: [],
    counters: {},
    rates: {},
    histograms: {},
    thresholdsFailed: [],
  };
  for (const r of reports) {
    out.agents += r.agents;
    out.instances += r.instances;
    out.durationMs = Math.max(out.durationMs, r.durationMs || 0);
    out.sources.push(...r.sources);
    addInto(out.counters, r.counters, (x, y) => x + y);
    addInto(out.rates, r.rates, (x, y) => ({ passes: x.passes + y.passes, fails: x.fails + y.fails }));
    addInto(out.histograms, r.histograms, (x, y) => ({
      boundsMs: x.boundsMs,
      counts: x.counts.map((c, i) => c + y.counts[i]),
    }));
    const from = r.sources.map((s) => `${s.idPrefix}${s.agentBase}+${s.agents}`).join(' ');
    out.thresholdsFailed.push(...r.thresholdsFailed.map((t) => `${t} (${from})`));
  }
  return out;
}

function pct(rate) {
  if (!rate || rate.passes + rate.fails === 0) return 'n/a';
  return `${((100 * rate.passes) / (rate.passes + rate.fails)).toFixed(2)} % of ${rate.passes + rate.fails}`;
}

function quantiles(h) {
  const n = h.counts.reduce((a, c) => a + c, 0);
  if (n === 0) return 'none';
  const show = (q) => {
    const v = quantileFromCounts(h.counts, q);
    return v === Number.POSITIVE_INFINITY ? `> ${BUCKET_BOUNDS_MS[BUCKET_BOUNDS_MS.length - 1]}` : `≤ ${v}`;
  };
  return `p50 ${show(0.5)} ms, p99 ${show(0.99)} ms, p99.9 ${show(0.999)} ms (${n})`;
}

function dialReasons(c) {
  const parts = DIAL_FAILURE_REASONS.map((k) => [k, c[`fleetgate_dial_failures{reason:${k}}`] || 0]);
  const failed = parts.filter(([, n]) => n > 0);
  return failed.length ? ` (failed: ${failed.map(([k, n]) => `${k} ${n}`).join(', ')})` : '';
}

/** The end-of-test text of a report (one instance or merged). */
export function summaryText(report, file) {
  const c = report.counters;
  const r = report.rates;
  const first = report.sources[0];
  const lines = [
    `fleetgate k6 agents, scenario ${report.scenario}: ${report.agents} agents in ${report.instances} instance(s)` +
      (report.instances === 1
        ? ` (${first.idPrefix}${first.agentBase} … ${first.idPrefix}${first.agentBase + first.agents - 1})`
        : ''),
    `  records sent ${c.fleetgate_records_sent || 0}, dropped by the ring ${c.fleetgate_records_dropped || 0}; commands received ${c.fleetgate_commands_received || 0}`,
    `  dials succeeded: ${pct(r.fleetgate_dial_ok)}${dialReasons(c)}; discovery failures ${c.fleetgate_discovery_failures || 0}; stream errors ${c.fleetgate_stream_errors || 0}`,
    `  agents with their stream up at the end: ${pct(r.fleetgate_streams_held)}; checks passed: ${pct(r.checks)}`,
    `  command latency: ${quantiles(report.histograms.command_latency_ms)}`,
    `  reconnect time: ${quantiles(report.histograms.reconnect_ms)}`,
    `  thresholds failed: ${report.thresholdsFailed.length ? report.thresholdsFailed.join('; ') : 'none'}`,
  ];
  if (file) lines.push(`  mergeable summary: ${file} (node loadtest/k6/merge-summaries.mjs FILE...)`);
  return `${lines.join('\n')}\n`;
}

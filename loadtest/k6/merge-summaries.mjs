#!/usr/bin/env node
// Merges the summaries that agents.js writes per k6 instance (handleSummary, format
// fleetgate-k6/1) into one: counters and rate passes/fails add, latency histograms add bucket by
// bucket and their percentiles are read off the sum, never averaged. Plain Node, no dependencies.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { mergeReports, summaryText } from './summary.js';

const HELP = `usage: node loadtest/k6/merge-summaries.mjs [--json OUT] SUMMARY.json...

Merges the k6-summary-<AGENT_BASE>.json files of the k6 instances of one run (loadtest/k6/agents.js
writes one per instance) and prints the fleet's totals: records, dials, streams held, checks, and
command-latency and reconnect-time percentiles from the summed histograms. --json writes the merged
summary (same format, so merged summaries merge again). Refuses summaries of different scenarios
and instances whose agent ranges (ID_PREFIX, AGENT_BASE, AGENTS) overlap. Exit 1 when a threshold
failed in any instance, 2 on bad input.`;

function main(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { json: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    console.error(`merge-summaries: ${err.message}\n\n${HELP}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(HELP);
    return 0;
  }
  if (parsed.positionals.length === 0) {
    console.error(`merge-summaries: no summary files\n\n${HELP}`);
    return 2;
  }
  let merged;
  try {
    const reports = parsed.positionals.map((file) => {
      try {
        return JSON.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        throw new Error(`${file}: ${err.message}`);
      }
    });
    merged = mergeReports(reports);
  } catch (err) {
    console.error(`merge-summaries: ${err.message}`);
    return 2;
  }
  if (parsed.values.json) writeFileSync(parsed.values.json, `${JSON.stringify(merged, null, 2)}\n`);
  process.stdout.write(summaryText(merged));
  return merged.thresholdsFailed.length > 0 ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));

#!/usr/bin/env node
'use strict';
// Latency of two models in onnxruntime-node, measured in one process with their runs interleaved
// (A on every sample, then B on every sample, round after round), so that a busy machine slows
// both alike and their ratio stays meaningful.
//
//   node tests/ort/time_pair.js A.onnx B.onnx --inputs DIR [--rounds N] [--repeat N] [--threads N]
//
// DIR: test_data_set_N folders (or one sample), as run_model.js reads them. Each round runs each
// sample --repeat times per model (after one warm-up run of each model on each sample). Prints
// JSON on stdout: {"a_ms", "b_ms" (median per inference over all rounds), "ratio" (median over
// rounds of B's round median over A's), "a_min_ms", "b_min_ms", "ratio_min" (fastest run over
// fastest run: on a machine busy with other work the least disturbed runs, often the steadier
// figure), "rounds": [[a, b], ...]}.
// Exit status: 0 ok, 1 failure, 2 usage.

const { listSets, loadFeeds, median } = require('./samples');

function usage(msg) {
  process.stderr.write(`time_pair.js: ${msg}\n` +
    'usage: time_pair.js A.onnx B.onnx --inputs DIR [--rounds N] [--repeat N] [--threads N]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { rounds: 7, repeat: 5, threads: 1, models: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (['--inputs', '--rounds', '--repeat', '--threads'].includes(a)) {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      const v = argv[++i];
      if (a === '--inputs') { o.inputs = v; continue; }
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) usage(`${a} takes a positive integer`);
      o[a.slice(2)] = n;
    } else if (a.startsWith('-')) {
      usage(`unknown option ${a}`);
    } else {
      o.models.push(a);
    }
  }
  if (o.models.length !== 2) usage('needs two models');
  if (!o.inputs) usage('missing --inputs DIR');
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const ort = require('onnxruntime-node');
  const options = {
    intraOpNumThreads: o.threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all', executionProviders: ['cpu'], logSeverityLevel: 3,
  };
  const sessions = [];
  for (const m of o.models) sessions.push(await ort.InferenceSession.create(m, options));
  const sets = listSets(o.inputs);
  const feeds = sessions.map((s) => sets.map((d) => loadFeeds(ort, s, d.dir)));
  for (let k = 0; k < 2; k++) for (const f of feeds[k]) await sessions[k].run(f);
  const all = [[], []];
  const rounds = [];
  for (let r = 0; r < o.rounds; r++) {
    const med = [];
    for (let k = 0; k < 2; k++) {
      const times = [];
      for (let i = 0; i < o.repeat; i++) {
        for (const f of feeds[k]) {
          const t0 = process.hrtime.bigint();
          await sessions[k].run(f);
          times.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
      }
      all[k].push(...times);
      med.push(median(times));
    }
    rounds.push(med);
  }
  process.stdout.write(JSON.stringify({
    a_ms: median(all[0]), b_ms: median(all[1]),
    ratio: median(rounds.map(([a, b]) => b / a)),
    a_min_ms: Math.min(...all[0]), b_min_ms: Math.min(...all[1]),
    ratio_min: Math.min(...all[1]) / Math.min(...all[0]), rounds,
  }) + '\n');
  for (const s of sessions) await s.release();
}

main().catch((e) => {
  process.stderr.write(`time_pair.js: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
});

#!/usr/bin/env node
'use strict';
// Runs an ONNX model in onnxruntime-node, the reference that parity tests and benchmarks
// compare onnx-monoquant against.
//
//   node tests/ort/run_model.js MODEL --inputs DIR [--outputs DIR] [options]
//
// DIR holds test_data_set_N/input_K.pb (or is itself one such set, then called
// test_data_set_0). Each input_K.pb is a TensorProto named after a graph input (an empty name
// falls back to position K). With --outputs, OUTDIR/test_data_set_N/output_K.pb is written
// for graph output K, named after it.
//
// Options:
//   --threads N             intra-op threads (default 1, so timings compare with ours)
//   --optimized PATH        save the optimized model (sessionOptions.optimizedModelFilePath)
//   --opt-level LEVEL       disabled | basic | extended | all (default all)
//   --repeat N              after one warm-up run per set, run every set N more times and
//                           print timing JSON on stdout: {"runs", "median_ms", "min_ms",
//                           "mean_ms", "max_rss_kb"}
//   --quiet                 no per-set log lines on stderr
// Exit status: 0 ok, 1 failure, 2 usage.

const fs = require('fs');
const path = require('path');
const { encodeTensor, ORT_TO_ONNX } = require('./tensor_proto');
const { listSets, loadFeeds, median } = require('./samples');

function usage(msg) {
  process.stderr.write(`run_model.js: ${msg}\n` +
    'usage: run_model.js MODEL --inputs DIR [--outputs DIR] [--threads N] [--optimized PATH]\n' +
    '                    [--opt-level disabled|basic|extended|all] [--repeat N] [--quiet]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { threads: 1, optLevel: 'all', repeat: 0, quiet: false };
  const takesValue = new Set(['--inputs', '--outputs', '--threads', '--optimized', '--opt-level', '--repeat']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (takesValue.has(a)) {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      const v = argv[++i];
      if (a === '--inputs') o.inputs = v;
      else if (a === '--outputs') o.outputs = v;
      else if (a === '--optimized') o.optimized = v;
      else if (a === '--opt-level') o.optLevel = v;
      else if (a === '--threads' || a === '--repeat') {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0) usage(`${a} takes a non-negative integer`);
        if (a === '--threads') o.threads = n; else o.repeat = n;
      }
    } else if (a === '--quiet') {
      o.quiet = true;
    } else if (a === '--help' || a === '-h') {
      usage('help');
    } else if (a.startsWith('-')) {
      usage(`unknown option ${a}`);
    } else if (!o.model) {
      o.model = a;
    } else {
      usage(`unexpected argument ${a}`);
    }
  }
  if (!o.model) usage('missing MODEL');
  if (!o.inputs) usage('missing --inputs DIR');
  if (!['disabled', 'basic', 'extended', 'all'].includes(o.optLevel)) usage('bad --opt-level');
  return o;
}

// Natural order, so test_data_set_10 follows test_data_set_9.
function writeOutputs(session, results, outDir) {
  fs.mkdirSync(outDir, { recursive: true });
  session.outputNames.forEach((name, k) => {
    const t = results[name];
    const dataType = ORT_TO_ONNX[t.type];
    if (!dataType) throw new Error(`output '${name}': unsupported type ${t.type}`);
    const buf = encodeTensor({ name, dims: t.dims, dataType, data: t.data });
    fs.writeFileSync(path.join(outDir, `output_${k}.pb`), buf);
  });
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const ort = require('onnxruntime-node');
  const options = {
    intraOpNumThreads: o.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: o.optLevel,
    executionProviders: ['cpu'],
    // Errors only: warnings about initializers listed as graph inputs would bury the results.
    logSeverityLevel: 3,
  };
  if (o.optimized) options.optimizedModelFilePath = o.optimized;
  const session = await ort.InferenceSession.create(o.model, options);
  const sets = listSets(o.inputs);
  const feedsPerSet = sets.map((s) => loadFeeds(ort, session, s.dir));

  for (let i = 0; i < sets.length; i++) {
    const results = await session.run(feedsPerSet[i]);
    if (o.outputs) writeOutputs(session, results, path.join(o.outputs, sets[i].name));
    if (!o.quiet) process.stderr.write(`ok ${sets[i].dir}\n`);
  }

  if (o.repeat > 0) {
    const times = [];
    for (let r = 0; r < o.repeat; r++) {
      for (const feeds of feedsPerSet) {
        const t0 = process.hrtime.bigint();
        await session.run(feeds);
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    process.stdout.write(JSON.stringify({
      runs: times.length,
      median_ms: median(times),
      min_ms: Math.min(...times),
      mean_ms: mean,
      max_rss_kb: process.resourceUsage().maxRSS,
    }) + '\n');
  }
  await session.release();
}

main().catch((e) => {
  process.stderr.write(`run_model.js: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
});

#!/usr/bin/env node
'use strict';
// Where onnxruntime-node spends a model's time, node by node, in the graph it actually runs:
// the FP32 model and its quantized versions side by side (up to three models: FP32, INT8 before
// and after a change), so that a quantized model that runs no faster than FP32 shows which
// kernels eat the gain.
//
//   node tests/ort/profile_nodes.js A.onnx [B.onnx [C.onnx]] --inputs DIR [--runs N] [--top N]
//                                   [--threads N] [--optimized-dir DIR] [--json]
//
// Each model gets a session with onnxruntime's profiler on (sessionOptions.enableProfiling; the
// trace is a JSON list of events, one "<node>_kernel_time" event per node per run with its
// op_name and duration). After one warm-up run per sample, the models run alternately on every
// sample, --runs times (default 20), so that load from other processes slows both alike. A node's
// time is the median of its runs (robust to a run disturbed by another process); an op type's
// time is the sum of its nodes'. Prints on stdout:
//   - per op type of the optimised graph: node count and milliseconds per inference for each
//     model, and the last model's minus A's, the largest difference to A first (op types are
//     those of onnxruntime's graph after its fusions: QLinearConv, FusedConv, Transpose
//     inserted by its layout pass, ...);
//   - the --top N (default 15) slowest nodes of each model, with op type and milliseconds;
//   - the total of node times per inference (the whole run adds the session's own overhead).
// --optimized-dir DIR also saves each optimised graph there (A.opt.onnx, B.opt.onnx, ...) for
// tools/ort-fusion or a graph viewer. --json prints one JSON object instead of the tables.
// The profiler's per-node timing costs a little per node, so compare these figures with each
// other, not with tests/ort/time_pair.js's.
// Exit status: 0 ok, 1 failure, 2 usage.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { naturalCompare, listSets, loadFeeds, median } = require('./samples');

function usage(msg) {
  process.stderr.write(`profile_nodes.js: ${msg}\n` +
    'usage: profile_nodes.js A.onnx [B.onnx [C.onnx]] --inputs DIR [--runs N] [--top N]\n' +
    '                        [--threads N]' +
    ' [--optimized-dir DIR] [--json]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { runs: 20, top: 15, threads: 1, json: false, models: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (['--inputs', '--optimized-dir', '--runs', '--top', '--threads'].includes(a)) {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      const v = argv[++i];
      if (a === '--inputs') { o.inputs = v; continue; }
      if (a === '--optimized-dir') { o.optimizedDir = v; continue; }
      const n = Number(v);
      const least = a === '--top' ? 0 : 1;
      if (!Number.isInteger(n) || n < least) usage(`${a} takes an integer >= ${least}`);
      o[a.slice(2)] = n;
    } else if (a === '--json') {
      o.json = true;
    } else if (a === '--help' || a === '-h') {
      usage('help');
    } else if (a.startsWith('-')) {
      usage(`unknown option ${a}`);
    } else {
      o.models.push(a);
    }
  }
  if (o.models.length < 1 || o.models.length > 3) usage('needs one to three models');
  if (!o.inputs) usage('missing --inputs DIR');
  return o;
}

// The trace's node events after the warm-up runs: per node, its op type and its durations (ms).
// Warm-up runs are the first `warmup` model_run events; node events inside them are dropped.
function nodeTimes(trace, warmup) {
  const runs = trace.filter((e) => e.cat === 'Session' && e.name === 'model_run')
    .sort((a, b) => a.ts - b.ts);
  if (runs.length <= warmup) throw new Error('profile trace holds no timed run');
  const timedFrom = runs[warmup].ts;
  const nodes = new Map();
  for (const e of trace) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < timedFrom) continue;
    const name = e.name.slice(0, -'_kernel_time'.length);
    const op = (e.args && e.args.op_name) || '?';
    if (!nodes.has(name)) nodes.set(name, { op, durs: [] });
    nodes.get(name).durs.push(e.dur / 1000);
  }
  return nodes;
}

// Per node median; per op type: count and sum of medians (ms per inference: each node runs once
// per inference, so with several samples the median over all their runs stands for one).
function summarise(nodes) {
  const byNode = [];
  const byOp = new Map();
  let total = 0;
  for (const [name, n] of nodes) {
    const ms = median(n.durs);
    byNode.push({ name, op: n.op, ms });
    const t = byOp.get(n.op) || { count: 0, ms: 0 };
    t.count += 1;
    t.ms += ms;
    byOp.set(n.op, t);
    total += ms;
  }
  byNode.sort((a, b) => b.ms - a.ms);
  return { byNode, byOp, total };
}

function pad(s, w, right) {
  s = String(s);
  return right ? s.padStart(w) : s.padEnd(w);
}

function printTables(o, labels, sums) {
  const ops = new Set();
  for (const s of sums) for (const k of s.byOp.keys()) ops.add(k);
  const rows = [...ops].map((op) => {
    const cells = sums.map((s) => s.byOp.get(op) || { count: 0, ms: 0 });
    const diff = cells.length > 1 ? cells[cells.length - 1].ms - cells[0].ms : cells[0].ms;
    // the order: the largest difference to A of any model (A's own time when alone)
    const spread = cells.length > 1
      ? Math.max(...cells.slice(1).map((c) => Math.abs(c.ms - cells[0].ms))) : cells[0].ms;
    return { op, cells, diff, spread };
  });
  rows.sort((a, b) => b.spread - a.spread || naturalCompare(a.op, b.op));
  const head = ['op type'.padEnd(28)];
  for (const l of labels) head.push(pad(`${l} n`, 6, true), pad(`${l} ms`, 9, true));
  const last = labels[labels.length - 1];
  if (sums.length > 1) head.push(pad(`${last}-A ms`, 9, true));
  const out = [head.join(' ')];
  for (const r of rows) {
    const line = [pad(r.op, 28)];
    for (const c of r.cells) line.push(pad(c.count || '', 6, true), pad(c.count ? c.ms.toFixed(3) : '', 9, true));
    if (sums.length > 1) line.push(pad(r.diff.toFixed(3), 9, true));
    out.push(line.join(' '));
  }
  const tot = [pad('total (sum of nodes)', 28)];
  for (const s of sums) tot.push(pad(s.byNode.length, 6, true), pad(s.total.toFixed(3), 9, true));
  if (sums.length > 1) {
    tot.push(pad((sums[sums.length - 1].total - sums[0].total).toFixed(3), 9, true));
  }
  out.push(tot.join(' '));
  sums.forEach((s, k) => {
    if (o.top === 0) return;
    out.push('', `${labels[k]}: ${o.models[k]}: top ${Math.min(o.top, s.byNode.length)} nodes`);
    for (const n of s.byNode.slice(0, o.top)) {
      out.push(`  ${pad(n.ms.toFixed(3), 8, true)} ms  ${pad(n.op, 22)} ${n.name}`);
    }
  });
  process.stdout.write(out.join('\n') + '\n');
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const ort = require('onnxruntime-node');
  const traceDir = fs.mkdtempSync(path.join(os.tmpdir(), 'profile_nodes-'));
  const labels = ['A', 'B', 'C'].slice(0, o.models.length);
  try {
    const sessions = [];
    for (let k = 0; k < o.models.length; k++) {
      const options = {
        intraOpNumThreads: o.threads, interOpNumThreads: 1, executionMode: 'sequential',
        graphOptimizationLevel: 'all', executionProviders: ['cpu'], logSeverityLevel: 3,
        enableProfiling: true, profileFilePrefix: path.join(traceDir, labels[k]),
      };
      if (o.optimizedDir) {
        fs.mkdirSync(o.optimizedDir, { recursive: true });
        options.optimizedModelFilePath = path.join(o.optimizedDir, `${labels[k]}.opt.onnx`);
      }
      sessions.push(await ort.InferenceSession.create(o.models[k], options));
    }
    const sets = listSets(o.inputs);
    const feeds = sessions.map((s) => sets.map((d) => loadFeeds(ort, s, d.dir)));
    for (let k = 0; k < sessions.length; k++) for (const f of feeds[k]) await sessions[k].run(f);
    for (let r = 0; r < o.runs; r++) {
      for (let k = 0; k < sessions.length; k++) for (const f of feeds[k]) await sessions[k].run(f);
    }
    const sums = [];
    for (let k = 0; k < sessions.length; k++) {
      sessions[k].endProfiling();
      const file = fs.readdirSync(traceDir).find((f) => f.startsWith(`${labels[k]}_`) && f.endsWith('.json'));
      if (!file) throw new Error(`onnxruntime wrote no profile for ${o.models[k]}`);
      const trace = JSON.parse(fs.readFileSync(path.join(traceDir, file), 'utf8'));
      sums.push(summarise(nodeTimes(trace, sets.length)));
    }
    for (const s of sessions) await s.release();
    if (o.json) {
      process.stdout.write(JSON.stringify(sums.map((s, k) => ({
        model: o.models[k], total_ms: s.total,
        op_types: Object.fromEntries([...s.byOp].map(([op, t]) => [op, t])),
        nodes: s.byNode,
      }))) + '\n');
    } else {
      printTables(o, labels, sums);
    }
  } finally {
    fs.rmSync(traceDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`profile_nodes.js: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
});

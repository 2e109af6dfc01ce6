#!/usr/bin/env node
'use strict';
// Top-1 accuracy of image classifiers on a labelled set of 8-bit images kept as .npy, measured in
// onnxruntime-node. One image per session.run, looped in-process, because mnist8's input is fixed
// at [1,1,28,28]: one node process per image would take minutes, one loop takes about a second.
//
//   node tests/ort/eval_mnist.js --images X.npy --labels Y.npy MODEL [MODEL ...] [--threads N]
//
// X.npy: uint8 [N, H, W] (or [N, C, H, W]); each image is divided by 255 and fed with the
// model's first input's shape ([1, 1, H, W] for mnist8). Y.npy: integer labels [N].
// Prints one JSON line on stdout: {"n": N, "models": [{"model", "correct", "accuracy",
// "predictions_sha"...}], "agree": images where every model predicts the same class}.
// Exit status: 0 ok, 1 failure, 2 usage.

const crypto = require('crypto');
const fs = require('fs');

function usage(msg) {
  process.stderr.write(`eval_mnist.js: ${msg}\n` +
    'usage: eval_mnist.js --images X.npy --labels Y.npy MODEL [MODEL ...] [--threads N]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { models: [], threads: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--images' || a === '--labels' || a === '--threads') {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      const v = argv[++i];
      if (a === '--images') o.images = v;
      else if (a === '--labels') o.labels = v;
      else {
        o.threads = Number(v);
        if (!Number.isInteger(o.threads) || o.threads < 0) usage('--threads takes a non-negative integer');
      }
    } else if (a.startsWith('-')) {
      usage(`unknown option ${a}`);
    } else {
      o.models.push(a);
    }
  }
  if (!o.images || !o.labels) usage('--images and --labels are required');
  if (!o.models.length) usage('no MODEL');
  return o;
}

// .npy version 1-3, C order, one of the integer dtypes the corpus uses.
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !shape) throw new Error(`${file}: unreadable header ${header.trim()}`);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order is not supported`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const body = buf.subarray(start);
  const kinds = {
    '|u1': [Uint8Array, 1], '|i1': [Int8Array, 1], '<i8': [BigInt64Array, 8], '<i4': [Int32Array, 4],
    '<u2': [Uint16Array, 2], '<i2': [Int16Array, 2],
  };
  const kind = kinds[descr[1]];
  if (!kind) throw new Error(`${file}: dtype ${descr[1]} is not supported`);
  const [Ctor, size] = kind;
  if (body.length < count * size) throw new Error(`${file}: ${body.length} data bytes, header says ${count * size}`);
  // Copy so the typed array is aligned whatever the header length.
  const data = new Ctor(body.buffer.slice(body.byteOffset, body.byteOffset + count * size));
  return { dims, data };
}

function argmax(a) {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

async function evaluate(ort, model, images, labels, threads) {
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all', executionProviders: ['cpu'], logSeverityLevel: 3,
  });
  const n = images.dims[0];
  const per = images.data.length / n;
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  // The image goes in as [1, ...image dims] with a channel axis added when the .npy has none.
  const dims = images.dims.length === 3 ? [1, 1, images.dims[1], images.dims[2]] : [1, ...images.dims.slice(1)];
  const x = new Float32Array(per);
  const predictions = new Uint16Array(n);
  let correct = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < per; j++) x[j] = images.data[i * per + j] / 255;
    const out = await session.run({ [inputName]: new ort.Tensor('float32', x, dims) });
    const p = argmax(out[outputName].data);
    predictions[i] = p;
    if (p === Number(labels.data[i])) correct++;
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await session.release();
  return {
    model, correct, accuracy: (100 * correct) / n, seconds,
    predictions_sha: crypto.createHash('sha256').update(Buffer.from(predictions.buffer)).digest('hex').slice(0, 16),
    predictions,
  };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const ort = require('onnxruntime-node');
  const images = readNpy(o.images);
  const labels = readNpy(o.labels);
  if (images.dims.length < 3 || labels.dims.length !== 1 || labels.dims[0] !== images.dims[0]) {
    throw new Error(`images [${images.dims}] and labels [${labels.dims}] do not match`);
  }
  const results = [];
  for (const m of o.models) results.push(await evaluate(ort, m, images, labels, o.threads));
  const n = images.dims[0];
  let agree = 0;
  for (let i = 0; i < n; i++) if (results.every((r) => r.predictions[i] === results[0].predictions[i])) agree++;
  process.stdout.write(JSON.stringify({
    n, agree,
    models: results.map(({ predictions, ...r }) => r),
  }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`eval_mnist.js: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
});

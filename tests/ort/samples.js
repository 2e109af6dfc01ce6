'use strict';
// Reading sample folders for onnxruntime-node, shared by run_model.js, time_pair.js and
// profile_nodes.js: DIR holds test_data_set_N folders of input_K.pb files, or is itself one
// sample; each input_K.pb is a TensorProto named after a graph input (an empty name falls back
// to position K).

const fs = require('fs');
const path = require('path');
const { decodeTensor } = require('./tensor_proto');

function naturalCompare(a, b) {
  return a.localeCompare(b, 'en', { numeric: true });
}

// [{name, dir}] in natural order; a folder that is itself one sample is test_data_set_0.
function listSets(dir) {
  const entries = fs.readdirSync(dir, { withFileTypes: true });
  const sets = entries
    .filter((e) => /^test_data_set_\d+$/.test(e.name) && (e.isDirectory() || e.isSymbolicLink()))
    .map((e) => e.name)
    .sort(naturalCompare);
  if (sets.length) return sets.map((s) => ({ name: s, dir: path.join(dir, s) }));
  if (entries.some((e) => /^input_\d+\.pb$/.test(e.name))) return [{ name: 'test_data_set_0', dir }];
  throw new Error(`${dir}: no test_data_set_N folders and no input_K.pb files`);
}

// The feeds of one sample folder for `session`; every graph input must get one.
function loadFeeds(ort, session, setDir) {
  const files = fs.readdirSync(setDir).filter((f) => /^input_\d+\.pb$/.test(f)).sort(naturalCompare);
  const feeds = {};
  for (const f of files) {
    const k = Number(f.match(/\d+/)[0]);
    const t = decodeTensor(fs.readFileSync(path.join(setDir, f)));
    const name = t.name || session.inputNames[k];
    if (!name) throw new Error(`${path.join(setDir, f)}: unnamed tensor and no graph input ${k}`);
    if (!session.inputNames.includes(name)) {
      throw new Error(`${path.join(setDir, f)}: '${name}' is not an input of the model ` +
        `(inputs: ${session.inputNames.join(', ')})`);
    }
    feeds[name] = new ort.Tensor(t.ortType, t.data, t.dims);
  }
  for (const n of session.inputNames) {
    if (!(n in feeds)) throw new Error(`${setDir}: no input_K.pb for graph input '${n}'`);
  }
  return feeds;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

module.exports = { naturalCompare, listSets, loadFeeds, median };

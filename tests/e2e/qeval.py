"""Quantized-model evaluation in onnxruntime-node, shared by tests/e2e/quantize_corpus,
tests/e2e/quantize_digits, tools/digits-demo and tools/bench-quant (all under /usr/bin/python3).

What is measured for each corpus model (docs/quantize-validation.md says why):
  mnist8             top-1 on the 10,000 labelled digits, FP32 and INT8 (tests/ort/eval_mnist.js)
  squeezenet         top-1 class of every eval photo, INT8 against FP32
  super_resolution,  SQNR of every output against FP32, over all eval samples
  ultraface, fastestdet
  silero_vad         per-chunk speech probability, INT8 against FP32 (stored state per chunk)
  paddleocr_det,     the task figures of tests/e2e/qeval_detect.py (text mask, top face box,
  blazeface, mlsd    line segments) and SQNR
plus, for every model, how many of the quantized Conv/MatMul/Gemm nodes onnxruntime turned into
integer kernels, and the size ratio."""

import collections
import math
import os
import re
import shutil
import subprocess
import time

import numpy as np
import onnx
from onnx import numpy_helper

import mqtest
import qeval_detect

EVAL_MNIST_JS = os.path.join(mqtest.ROOT, 'tests', 'ort', 'eval_mnist.js')

# Thresholds of issue 6.
MNIST_FP32_ACCURACY = 99.41      # the corpus README's figure; checks the eval pipeline itself
MNIST_MAX_DROP = 0.3             # points of top-1
SQUEEZENET_MIN_AGREE = 8 / 9     # fraction of eval photos with the FP32 top-1 class
MIN_SQNR_DB = 25.0
VAD_MAX_DIFF = 0.05              # speech probability
MAX_SIZE_RATIO = 0.30            # for Conv-heavy models
# Conv-heavy: the Conv/ConvTranspose weights hold at least this share of the parameter bytes.
CONV_HEAVY_SHARE = 0.8

# What each model's accuracy is judged by.
METRIC = {
    'mnist8': 'mnist',
    'squeezenet': 'top1',
    'super_resolution': 'sqnr',
    'ultraface': 'sqnr',
    'fastestdet': 'sqnr',
    'silero_vad': 'vad',
    'paddleocr_det': 'paddleocr',
    'blazeface': 'blazeface',
    'mlsd': 'mlsd',
}

# Size bounds (quantized / FP32 bytes) of models whose target is not the Conv-heavy one: models
# whose parameters are partly not Conv weights, or small enough that names and scales weigh.
SIZE_BOUND = {
    'mnist8': 0.50,
    'paddleocr_det': 0.35,
}

WEIGHTED_OPS = ('Conv', 'ConvTranspose', 'MatMul', 'Gemm')
# onnxruntime's integer kernels that a QDQ group around each weighted op becomes.
FUSED_OPS = {
    'Conv': ('QLinearConv', 'ConvInteger'),
    'ConvTranspose': ('QLinearConvTranspose',),
    'MatMul': ('QLinearMatMul', 'MatMulInteger', 'MatMulIntegerToFloat'),
    'Gemm': ('QGemm',),
}


class Failure(Exception):
    """A step that could not run at all (as opposed to a figure out of bounds)."""


# ---------------------------------------------------------------- running things

def quantize(exe, model, out, calib, report=None, extra=(), env=None, timeout=1800):
    """Runs `exe IN OUT --calib DIR [--report FILE] extra...`; returns (seconds, peak RSS KiB).
    Raises Failure with the tool's stderr when it fails."""
    cmd = [exe, model, out, '--calib', calib]
    if report:
        cmd += ['--report', report]
    cmd += list(extra)
    seconds, rss, rc, out_text, err_text = measure(cmd, env=env, timeout=timeout)
    if rc != 0:
        sig = mqtest.signal_name(rc)
        raise Failure(f'quantization failed ({sig or "exit " + str(rc)}): {" ".join(cmd)}\n'
                      f'{err_text.strip()[-3000:]}')
    return seconds, rss


def measure(cmd, env=None, timeout=1800):
    """Runs cmd; returns (seconds, peak RSS of cmd in KiB, exit status, stdout, stderr).

    The peak RSS comes from GNU time, not from our own wait4(): Linux carries a process's
    high-water RSS across execve, so a child forked from this Python process would report at
    least Python's own size (100 MiB once numpy has loaded the outputs). time's child is forked
    from time itself. Without /usr/bin/time the RSS is reported as 0."""
    import tempfile
    time_bin = '/usr/bin/time' if os.access('/usr/bin/time', os.X_OK) else None
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(prefix='mq-rss-') as rss_file:
        full = [time_bin, '-f', '%M', '-o', rss_file.name] + list(cmd) if time_bin else list(cmd)
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, stdout=out, stderr=err, env=env)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        seconds = time.perf_counter() - t0
        rss, rc = 0, proc.returncode
        if time_bin:
            # time writes "Command exited with non-zero status N" or "Command terminated by
            # signal N" before the figure; a signal is reported as Popen would (-N).
            text = open(rss_file.name).read()
            lines = [ln for ln in text.split('\n') if ln.strip().isdigit()]
            rss = int(lines[-1]) if lines else 0
            m = re.search(r'terminated by signal (\d+)', text)
            if m:
                rc = -int(m.group(1))
        out.seek(0)
        err.seek(0)
        return (seconds, rss, rc, out.read().decode(errors='replace'),
                err.read().decode(errors='replace'))


def ort_run(model, inputs, outputs=None, optimized=None, repeat=0, timeout=1800):
    """Runs tests/ort/run_model.js (one thread); returns its timing JSON when repeat > 0."""
    cmd = ['node', mqtest.RUN_MODEL_JS, model, '--inputs', inputs, '--quiet']
    if outputs:
        cmd += ['--outputs', outputs]
    if optimized:
        cmd += ['--optimized', optimized]
    if repeat:
        cmd += ['--repeat', str(repeat)]
    r = mqtest.run(cmd, timeout=timeout)
    if r.returncode != 0:
        raise Failure(f'onnxruntime failed on {model} (exit {r.returncode}): {r.stderr.strip()[-3000:]}')
    if repeat:
        import json
        return json.loads(r.stdout.strip().splitlines()[-1])
    return None


def read_outputs(folder):
    """[(set name, [(output name, array), ...]), ...] from run_model.js --outputs."""
    result = []
    for s in mqtest.sample_sets(folder):
        d = os.path.join(folder, s)
        files = sorted((f for f in os.listdir(d) if f.startswith('output_')), key=mqtest.natural_key)
        outs = []
        for f in files:
            t = onnx.load_tensor(os.path.join(d, f))
            outs.append((t.name, numpy_helper.to_array(t)))
        result.append((s, outs))
    return result


# ---------------------------------------------------------------- graphs

def walk_nodes(graph):
    """Every node of graph, subgraphs (If/Loop/Scan bodies) included."""
    for n in graph.node:
        yield n
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from walk_nodes(a.g)
            for g in a.graphs:
                yield from walk_nodes(g)


def op_counts(model):
    return collections.Counter(n.op_type for n in walk_nodes(model.graph))


def quantized_weighted_nodes(model):
    """Weighted nodes (Conv, MatMul, ...) of our output whose data input and weight both come out
    of a DequantizeLinear: the ones onnxruntime should turn into integer kernels."""
    dq_outputs = {n.output[0] for n in walk_nodes(model.graph) if n.op_type == 'DequantizeLinear'}
    counts = collections.Counter()
    for n in walk_nodes(model.graph):
        if n.op_type in WEIGHTED_OPS and len(n.input) >= 2 \
                and n.input[0] in dq_outputs and n.input[1] in dq_outputs:
            counts[n.op_type] += 1
    return counts


def weight_only_nodes(model):
    """Weighted nodes whose weight is dequantized but whose data input is float."""
    dq_outputs = {n.output[0] for n in walk_nodes(model.graph) if n.op_type == 'DequantizeLinear'}
    return collections.Counter(n.op_type for n in walk_nodes(model.graph)
                               if n.op_type in WEIGHTED_OPS and len(n.input) >= 2
                               and n.input[1] in dq_outputs and n.input[0] not in dq_outputs)


def fusion(int8_model, optimized_model):
    """{op: (quantized in our output, integer kernels in onnxruntime's optimized graph, names)}."""
    quantized = quantized_weighted_nodes(int8_model)
    optimized = op_counts(optimized_model)
    result = {}
    for op in WEIGHTED_OPS:
        fused = {k: optimized[k] for k in FUSED_OPS[op] if optimized[k]}
        if quantized[op] or fused:
            result[op] = (quantized[op], sum(fused.values()), fused)
    return result


def weight_share(model):
    """(Conv/ConvTranspose weight bytes) / (all initializer and Constant bytes)."""
    sizes = {}

    def nbytes(t):
        try:
            return numpy_helper.to_array(t).nbytes
        except Exception:  # noqa: BLE001 - external or exotic data: count its raw bytes
            return len(t.raw_data)

    def collect(graph):
        for t in graph.initializer:
            sizes[t.name] = nbytes(t)
        for n in graph.node:
            if n.op_type == 'Constant':
                for a in n.attribute:
                    if a.name == 'value':
                        sizes[n.output[0]] = nbytes(a.t)
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    collect(a.g)
                for g in a.graphs:
                    collect(g)

    collect(model.graph)
    total = sum(sizes.values())
    conv = sum(sizes.get(n.input[1], 0) for n in walk_nodes(model.graph)
               if n.op_type in ('Conv', 'ConvTranspose') and len(n.input) > 1)
    return conv / total if total else 0.0


# ---------------------------------------------------------------- figures

def sqnr_db(ref, test):
    ref = np.asarray(ref, dtype=np.float64)
    err = np.asarray(test, dtype=np.float64) - ref
    signal, noise = float(np.sum(ref * ref)), float(np.sum(err * err))
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10 * math.log10(signal / noise)


def compare_sqnr(fp32_sets, int8_sets):
    """{output name: (SQNR over all samples, worst per-sample SQNR, its set)}."""
    joined = collections.OrderedDict()
    for (s, ref_outs), (_, q_outs) in zip(fp32_sets, int8_sets):
        for (name, ref), (_, q) in zip(ref_outs, q_outs):
            if ref.dtype.kind != 'f':
                continue
            e = joined.setdefault(name, {'ref': [], 'q': [], 'worst': (math.inf, None)})
            e['ref'].append(ref.ravel())
            e['q'].append(q.ravel())
            v = sqnr_db(ref, q)
            if v < e['worst'][0]:
                e['worst'] = (v, s)
    return {name: (sqnr_db(np.concatenate(e['ref']), np.concatenate(e['q'])), e['worst'][0], e['worst'][1])
            for name, e in joined.items()}


def check_same_outputs(fp32_sets, int8_sets):
    if [s for s, _ in fp32_sets] != [s for s, _ in int8_sets]:
        raise Failure('FP32 and INT8 runs wrote different sample sets')
    for (s, a), (_, b) in zip(fp32_sets, int8_sets):
        if [n for n, _ in a] != [n for n, _ in b]:
            raise Failure(f'{s}: INT8 outputs {[n for n, _ in b]}, FP32 {[n for n, _ in a]}')
        for (n, x), (_, y) in zip(a, b):
            if x.shape != y.shape or x.dtype != y.dtype:
                raise Failure(f'{s} output {n!r}: INT8 {y.dtype}{list(y.shape)}, FP32 {x.dtype}{list(x.shape)}')


def fmt_db(v):
    return 'inf' if v == math.inf else f'{v:.1f}'


class Result:
    """Figures of one model and the checks made on them."""

    def __init__(self, name):
        self.name = name
        self.figures = collections.OrderedDict()   # for tables: short name -> text
        self.lines = []                             # for logs: measured numbers
        self.checks = []                            # (ok, description, kind, value)

    def check(self, ok, text, kind=None, value=None):
        """kind names the measured figure of the issue's checks ('sqnr', 'top1', 'vad_diff',
        'mnist_drop', 'size'), and value is that figure, so that quantize_corpus
        --known-shortfall KIND>=BOUND can hold it to a bound; other checks have neither."""
        self.checks.append((bool(ok), text, kind, value))
        return ok

    def note(self, text):
        self.lines.append(text)

    @property
    def failed(self):
        return [t for ok, t, *_ in self.checks if not ok]


def evaluate_accuracy(name, models_dir, fp32, int8, work, result):
    """Accuracy of int8 against fp32 on the model's eval/ set; adds figures and checks."""
    metric = METRIC.get(name)
    folder = os.path.join(models_dir, name)
    eval_dir = os.path.join(folder, 'eval')
    if metric == 'mnist':
        evaluate_mnist(eval_dir, fp32, int8, result)
        return
    fp32_out = os.path.join(work, 'fp32-out')
    int8_out = os.path.join(work, 'int8-out')
    for d in (fp32_out, int8_out):
        shutil.rmtree(d, ignore_errors=True)
    ort_run(fp32, eval_dir, outputs=fp32_out)
    ort_run(int8, eval_dir, outputs=int8_out)
    a, b = read_outputs(fp32_out), read_outputs(int8_out)
    check_same_outputs(a, b)
    sq = compare_sqnr(a, b)
    if metric == 'top1':
        labels = read_labels(os.path.join(folder, 'imagenet_labels.txt'))
        agree = 0
        for (s, ra), (_, rb) in zip(a, b):
            ca, cb = int(np.argmax(ra[0][1].ravel())), int(np.argmax(rb[0][1].ravel()))
            agree += ca == cb
            result.note(f'{s}: FP32 top-1 {ca} {labels.get(ca, "")!r} p={ra[0][1].ravel()[ca]:.3f}, '
                        f'INT8 top-1 {cb} {labels.get(cb, "")!r} p={rb[0][1].ravel()[cb]:.3f}'
                        + ('' if ca == cb else '  <-- differs'))
        need = math.ceil(SQUEEZENET_MIN_AGREE * len(a) - 1e-9)
        out_name = a[0][1][0][0]
        result.figures['accuracy'] = f'top-1 same as FP32 on {agree}/{len(a)}, SQNR {fmt_db(sq[out_name][0])} dB'
        result.check(agree >= need, kind='top1', value=agree, text=f'top-1 class same as FP32 on {agree} of {len(a)} eval photos '
                     f'(need {need}); output SQNR {fmt_db(sq[out_name][0])} dB')
    elif metric == 'sqnr':
        parts = []
        for out_name, (total, worst, worst_set) in sq.items():
            parts.append(f'{out_name} {fmt_db(total)} dB')
            result.check(total >= MIN_SQNR_DB, kind='sqnr', value=total,
                         text=f"output '{out_name}' SQNR {fmt_db(total)} dB over {len(a)} eval samples "
                         f'(worst sample {worst_set} {fmt_db(worst)} dB; need >= {MIN_SQNR_DB:g})')
        result.figures['accuracy'] = 'SQNR ' + ', '.join(parts)
    elif metric in DETECTORS:
        DETECTORS[metric](eval_dir, a, b, sq, result, fmt_db)
    elif metric == 'vad':
        diffs = []
        for (s, ra), (_, rb) in zip(a, b):
            pa, pb = float(ra[0][1].ravel()[0]), float(rb[0][1].ravel()[0])
            diffs.append((abs(pa - pb), s, pa, pb))
        worst = max(diffs)
        mean_a = sum(d[2] for d in diffs) / len(diffs)
        mean_b = sum(d[3] for d in diffs) / len(diffs)
        for d, s, pa, pb in diffs:
            result.note(f'{s}: speech probability FP32 {pa:.4f}, INT8 {pb:.4f}, |diff| {d:.4f}')
        state = [f'{n} {fmt_db(v[0])} dB' for n, v in sq.items() if n != a[0][1][0][0]]
        result.figures['accuracy'] = (f'max |p diff| {worst[0]:.4f}, mean p {mean_a:.3f}/{mean_b:.3f}'
                                      + (f', SQNR {", ".join(state)}' if state else ''))
        result.check(worst[0] <= VAD_MAX_DIFF, kind='vad_diff', value=worst[0],
                     text=f'speech probability within {VAD_MAX_DIFF:g} of FP32 on every one of {len(diffs)} chunks: '
                     f'worst {worst[1]} FP32 {worst[2]:.4f} INT8 {worst[3]:.4f} (|diff| {worst[0]:.4f}); '
                     f'mean probability FP32 {mean_a:.4f}, INT8 {mean_b:.4f}')
    else:
        result.figures['accuracy'] = 'SQNR ' + ', '.join(f'{n} {fmt_db(v[0])} dB' for n, v in sq.items())
        result.note('no accuracy criterion for this model; SQNR printed only')


DETECTORS = {
    'paddleocr': qeval_detect.evaluate_paddleocr,
    'blazeface': qeval_detect.evaluate_blazeface,
    'mlsd': qeval_detect.evaluate_mlsd,
}


def evaluate_mnist(eval_dir, fp32, int8, result):
    import json
    x = os.path.join(eval_dir, 'mnist_x_u8.npy')
    y = os.path.join(eval_dir, 'mnist_y.npy')
    r = mqtest.run(['node', EVAL_MNIST_JS, '--images', x, '--labels', y, fp32, int8], timeout=1200)
    if r.returncode != 0:
        raise Failure(f'eval_mnist.js failed (exit {r.returncode}): {r.stderr.strip()[-3000:]}')
    j = json.loads(r.stdout.strip().splitlines()[-1])
    acc_a, acc_b = j['models'][0]['accuracy'], j['models'][1]['accuracy']
    result.figures['accuracy'] = f'top-1 FP32 {acc_a:.2f} %, INT8 {acc_b:.2f} %'
    result.note(f"top-1 on {j['n']} digits: FP32 {acc_a:.2f} %, INT8 {acc_b:.2f} %; "
                f"same prediction on {j['agree']}; eval {j['models'][0]['seconds']:.1f} s + "
                f"{j['models'][1]['seconds']:.1f} s")
    result.check(abs(acc_a - MNIST_FP32_ACCURACY) < 0.005,
                 f'FP32 top-1 {acc_a:.2f} % is the reference {MNIST_FP32_ACCURACY} % (checks the eval itself)')
    result.check(acc_a - acc_b <= MNIST_MAX_DROP + 1e-9, kind='mnist_drop', value=acc_a - acc_b,
                 text=f'INT8 top-1 {acc_b:.2f} % at most {MNIST_MAX_DROP} points below FP32 {acc_a:.2f} %')


def read_labels(path):
    labels = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, _, text = line.strip().partition(',')
                if k.isdigit():
                    labels[int(k)] = text.split(',')[0]
    return labels


def evaluate_fusion(int8_path, optimized_path, result, required=('Conv', 'MatMul')):
    """Loads onnxruntime's optimized graph and checks every quantized op of `required` became
    an integer kernel."""
    int8_model = onnx.load(int8_path, load_external_data=False)
    optimized = onnx.load(optimized_path, load_external_data=False)
    fused = fusion(int8_model, optimized)
    parts = []
    for op, (q, f, kinds) in fused.items():
        kinds_text = '+'.join(f'{v} {k}' for k, v in kinds.items()) or 'none'
        parts.append(f'{op} {f}/{q}')
        text = (f'onnxruntime fused {f} of {q} quantized {op} nodes into integer kernels ({kinds_text})')
        if op in required:
            result.check(q > 0 and f >= q, text, kind='unfused', value=q - f)
        else:
            result.note(text + ('' if f >= q else '  [not required]'))
    if not any(op in fused for op in required):
        result.check(False, f'no quantized {"/".join(required)} node in the output at all')
    weight_only = weight_only_nodes(int8_model)
    if weight_only:
        result.note(f'nodes with int8 weights but float activations (onnxruntime runs them in float): '
                    f'{dict(weight_only)}')
    leftover = {k: v for k, v in op_counts(optimized).items() if k in WEIGHTED_OPS or k.startswith('Fused')}
    if leftover:
        result.note(f'float weighted ops left in the optimized graph: {dict(leftover)}')
    result.figures['fused'] = ', '.join(parts)
    return fused

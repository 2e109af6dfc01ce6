"""What onnxruntime left in float after optimising a QDQ model (used by tools/ort-fusion,
tools/bench-quant and the quantize tests).

onnxruntime's CPU provider turns a DequantizeLinear -> op -> QuantizeLinear group into an integer
kernel (QLinearConv, QLinearAdd, QLinearConcat, ...) or, for ops that only move values
(Transpose, MaxPool, Reshape, ...), drops the pair and runs the op on the int8 data. Every
QuantizeLinear or DequantizeLinear still in its optimised graph is a conversion at run time.

count(quantized_model_path) saves onnxruntime's optimised graph (tests/ort/run_model.js
--optimized) and returns a Summary:
  q, dq             QuantizeLinear / DequantizeLinear nodes left (a DequantizeLinear of a
                    constant is not counted: onnxruntime folds it into a float constant once)
  float_weighted    Conv / ConvTranspose / MatMul / Gemm still in float, by op type
  integer           integer kernels present, by op type
  in_island         float nodes that read a DequantizeLinear AND write into a QuantizeLinear:
                    ops we quantized that onnxruntime did not fuse (each costs a pair)"""

import collections
import os
import tempfile

import onnx

import mqtest

WEIGHTED = ('Conv', 'ConvTranspose', 'MatMul', 'Gemm', 'FusedConv', 'FusedGemm', 'FusedMatMul',
            'NchwcConv')
# onnxruntime's integer kernels by name (the int8 versions of Transpose, MaxPool, Reshape, ...
# keep their float names; they show up as neither float weighted ops nor unfused pairs).
INTEGER_PREFIXES = ('QLinear', 'QGemm', 'ConvInteger', 'MatMulInteger', 'DynamicQuantize', 'QAttention',
                    'QEmbed', 'QOrdered')


def _walk(graph):
    for n in graph.node:
        yield n
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _walk(a.g)
            for g in a.graphs:
                yield from _walk(g)


def _constants(graph, out=None):
    out = set() if out is None else out
    out.update(t.name for t in graph.initializer)
    for n in graph.node:
        if n.op_type == 'Constant':
            out.update(n.output)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _constants(a.g, out)
            for g in a.graphs:
                _constants(g, out)
    return out


class Summary:
    def __init__(self):
        self.q = 0
        self.dq = 0
        self.float_weighted = collections.Counter()
        self.integer = collections.Counter()
        self.in_island = collections.Counter()
        self.ops = collections.Counter()

    @property
    def unfused(self):
        return self.q + self.dq

    def text(self):
        parts = [f'unfused Q {self.q}, DQ {self.dq}']
        parts.append('float weighted ' + (', '.join(f'{k} {v}' for k, v in sorted(self.float_weighted.items()))
                                          or 'none'))
        parts.append('integer ' + (', '.join(f'{k} {v}' for k, v in sorted(self.integer.items())) or 'none'))
        parts.append('unfused inside islands ' + (', '.join(f'{k} {v}' for k, v in sorted(self.in_island.items()))
                                                  or 'none'))
        return '; '.join(parts)


def summarize(optimized):
    """Summary of an onnxruntime-optimised model (onnx.ModelProto)."""
    s = Summary()
    consts = _constants(optimized.graph)
    nodes = list(_walk(optimized.graph))
    producer = {}
    readers = collections.defaultdict(list)
    for n in nodes:
        for o in n.output:
            producer[o] = n
        for i in n.input:
            readers[i].append(n)
    for n in nodes:
        s.ops[n.op_type] += 1
        if n.op_type == 'QuantizeLinear':
            s.q += 1
        elif n.op_type == 'DequantizeLinear':
            if not (n.input and n.input[0] in consts):
                s.dq += 1
        elif n.op_type in WEIGHTED:
            s.float_weighted[n.op_type] += 1
        elif n.op_type.startswith(INTEGER_PREFIXES):
            s.integer[n.op_type] += 1
        else:
            reads_dq = any(i in producer and producer[i].op_type == 'DequantizeLinear'
                           and producer[i].input[0] not in consts for i in n.input)
            feeds_q = any(r.op_type == 'QuantizeLinear' for o in n.output for r in readers[o])
            if reads_dq and feeds_q:
                s.in_island[n.op_type] += 1
    return s


def optimize(model_path, inputs, optimized_path, timeout=600):
    """Runs the model once in onnxruntime-node with optimizedModelFilePath."""
    cmd = ['node', mqtest.RUN_MODEL_JS, model_path, '--inputs', inputs, '--quiet',
           '--optimized', optimized_path]
    r = mqtest.run(cmd, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f'onnxruntime failed on {model_path}: {r.stderr.strip()[-2000:]}')


def count(model_path, inputs, optimized_path=None):
    """Summary of what onnxruntime left in float for this model; inputs: a sample folder."""
    with tempfile.TemporaryDirectory(prefix='mq-ort-fusion-') as tmp:
        path = optimized_path or os.path.join(tmp, 'optimized.onnx')
        optimize(model_path, inputs, path)
        return summarize(onnx.load(path, load_external_data=False))


def first_sample(folder):
    sets = mqtest.sample_sets(folder)
    return os.path.join(folder, sets[0]) if sets else folder


'use strict';
// A small reader/writer for ONNX TensorProto, the format of the backend test data
// (test_data_set_N/input_K.pb). Self-contained so the tests need no protobuf package.
// Field numbers follow onnx.proto: 1 dims, 2 data_type, 4 float_data, 5 int32_data,
// 6 string_data, 7 int64_data, 8 name, 9 raw_data, 10 double_data, 11 uint64_data,
// 13 external_data, 14 data_location.

const DataType = Object.freeze({
  FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8,
  BOOL: 9, FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, COMPLEX64: 14,
  COMPLEX128: 15, BFLOAT16: 16,
});

// ONNX data type -> [onnxruntime-node type name, typed array constructor].
// bfloat16 and complex have no onnxruntime-node tensor type; they stay raw.
const TYPES = {
  [DataType.FLOAT]: ['float32', Float32Array],
  [DataType.UINT8]: ['uint8', Uint8Array],
  [DataType.INT8]: ['int8', Int8Array],
  [DataType.UINT16]: ['uint16', Uint16Array],
  [DataType.INT16]: ['int16', Int16Array],
  [DataType.INT32]: ['int32', Int32Array],
  [DataType.INT64]: ['int64', BigInt64Array],
  [DataType.STRING]: ['string', Array],
  [DataType.BOOL]: ['bool', Uint8Array],
  [DataType.FLOAT16]: ['float16', Uint16Array],
  [DataType.DOUBLE]: ['float64', Float64Array],
  [DataType.UINT32]: ['uint32', Uint32Array],
  [DataType.UINT64]: ['uint64', BigUint64Array],
};

const ORT_TO_ONNX = Object.fromEntries(Object.entries(TYPES).map(([k, v]) => [v[0], Number(k)]));

class Reader {
  constructor(buf, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  varint() {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
      shift += 7n;
      if (shift > 63n) throw new Error('varint too long');
    }
  }

  bytes() {
    const len = Number(this.varint());
    if (len < 0 || this.pos + len > this.end) throw new Error('length past end of message');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  skip(wire) {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
    if (this.pos > this.end) throw new Error('field past end of message');
  }
}

// Repeated scalar fields may come packed (wire type 2) or one per tag; accept both.
function readRepeated(r, wire, scalarWire, readOne, out) {
  if (wire === 2) {
    const sub = r.bytes();
    const rr = new Reader(sub);
    while (rr.pos < rr.end) out.push(readOne(rr));
  } else if (wire === scalarWire) {
    out.push(readOne(r));
  } else {
    throw new Error(`unexpected wire type ${wire} for repeated field`);
  }
}

const readVarintSigned64 = (r) => BigInt.asIntN(64, r.varint());
const readVarintUnsigned64 = (r) => BigInt.asUintN(64, r.varint());
const readVarintInt32 = (r) => Number(BigInt.asIntN(32, r.varint()));
function readFixed32Float(r) {
  if (r.pos + 4 > r.end) throw new Error('truncated float');
  const v = Buffer.from(r.buf.buffer, r.buf.byteOffset + r.pos, 4).readFloatLE(0);
  r.pos += 4;
  return v;
}
function readFixed64Double(r) {
  if (r.pos + 8 > r.end) throw new Error('truncated double');
  const v = Buffer.from(r.buf.buffer, r.buf.byteOffset + r.pos, 8).readDoubleLE(0);
  r.pos += 8;
  return v;
}

// Decodes a TensorProto. Returns {name, dims: number[], dataType, data} where data is a typed
// array of the type's natural JS representation (BigInt64Array for int64, string[] for strings).
function decodeTensor(buf) {
  const r = new Reader(buf);
  const t = {
    name: '', dims: [], dataType: 0, raw: null, floatData: [], int32Data: [], stringData: [],
    int64Data: [], doubleData: [], uint64Data: [], external: false,
  };
  while (r.pos < r.end) {
    const key = Number(r.varint());
    const field = key >>> 3;
    const wire = key & 7;
    switch (field) {
      case 1: readRepeated(r, wire, 0, readVarintSigned64, t.dims); break;
      case 2: t.dataType = readVarintInt32(r); break;
      case 4: readRepeated(r, wire, 5, readFixed32Float, t.floatData); break;
      case 5: readRepeated(r, wire, 0, readVarintInt32, t.int32Data); break;
      case 6: t.stringData.push(Buffer.from(r.bytes()).toString('utf8')); break;
      case 7: readRepeated(r, wire, 0, readVarintSigned64, t.int64Data); break;
      case 8: t.name = Buffer.from(r.bytes()).toString('utf8'); break;
      case 9: t.raw = r.bytes(); break;
      case 10: readRepeated(r, wire, 1, readFixed64Double, t.doubleData); break;
      case 11: readRepeated(r, wire, 0, readVarintUnsigned64, t.uint64Data); break;
      case 14: t.external = readVarintInt32(r) === 1; break;
      default: r.skip(wire);
    }
  }
  if (t.external) throw new Error(`tensor '${t.name}': external data is not supported here`);
  const dims = t.dims.map((d) => {
    if (d < 0n || d > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`tensor '${t.name}': bad dim ${d}`);
    return Number(d);
  });
  const count = dims.reduce((a, b) => a * b, 1);
  const spec = TYPES[t.dataType];
  if (!spec) throw new Error(`tensor '${t.name}': unsupported data_type ${t.dataType}`);
  const [ortType, Ctor] = spec;
  let data;
  if (t.dataType === DataType.STRING) {
    data = t.stringData;
  } else if (t.raw) {
    const need = count * Ctor.BYTES_PER_ELEMENT;
    if (t.raw.length !== need) {
      throw new Error(`tensor '${t.name}': raw_data has ${t.raw.length} bytes, dims need ${need}`);
    }
    // Copy so the typed array is aligned and owns its memory.
    const copy = new Uint8Array(need);
    copy.set(t.raw);
    data = new Ctor(copy.buffer, 0, count);
  } else {
    let src;
    switch (t.dataType) {
      case DataType.FLOAT: src = t.floatData; break;
      case DataType.DOUBLE: src = t.doubleData; break;
      case DataType.INT64: src = t.int64Data; break;
      case DataType.UINT32: src = t.uint64Data.map(Number); break;
      case DataType.UINT64: src = t.uint64Data; break;
      default: src = t.int32Data; // int8..int32, bool and float16 bits live in int32_data
    }
    if (src.length !== count) {
      throw new Error(`tensor '${t.name}': has ${src.length} values, dims need ${count}`);
    }
    data = Ctor.from(src);
  }
  return { name: t.name, dims, dataType: t.dataType, ortType, data };
}

function encodeVarint(value, out) {
  let v = BigInt.asUintN(64, BigInt(value));
  while (v >= 0x80n) {
    out.push(Number((v & 0x7fn) | 0x80n));
    v >>= 7n;
  }
  out.push(Number(v));
}

function encodeKeyBytes(field, bytes, parts) {
  const head = [];
  encodeVarint((field << 3) | 2, head);
  encodeVarint(bytes.length, head);
  parts.push(Buffer.from(head), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

// Encodes {name, dims, dataType, data} as a TensorProto with name, dims, data_type and raw_data
// (string_data for strings). data is a typed array matching dataType, or string[].
function encodeTensor({ name, dims, dataType, data }) {
  const parts = [];
  const head = [];
  for (const d of dims) {
    encodeVarint(1 << 3, head);
    encodeVarint(d, head);
  }
  encodeVarint(2 << 3, head);
  encodeVarint(dataType, head);
  parts.push(Buffer.from(head));
  if (dataType === DataType.STRING) {
    for (const s of data) encodeKeyBytes(6, Buffer.from(String(s), 'utf8'), parts);
  }
  encodeKeyBytes(8, Buffer.from(name, 'utf8'), parts);
  if (dataType !== DataType.STRING) {
    let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (dataType === DataType.BOOL) bytes = Uint8Array.from(bytes, (b) => (b ? 1 : 0));
    encodeKeyBytes(9, bytes, parts);
  }
  return Buffer.concat(parts);
}

module.exports = { DataType, TYPES, ORT_TO_ONNX, decodeTensor, encodeTensor };

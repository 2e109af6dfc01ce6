"""Task figures of the corpus detectors, INT8 against FP32 (used by tests/e2e/qeval.py).

Each function takes the eval folder and the outputs of both models as read_outputs gives them
([(set name, [(output name, array), ...]), ...]) and adds figures and checks to a qeval.Result.
The decoding follows the corpus README:
  paddleocr_det  text mask = probability > 0.3; a line (boxes.txt) is found when >= 20 % of its
                 box is in the mask. Checks: mask IoU against FP32 over all eval pixels, and
                 the same lines found as FP32.
  blazeface      score = sigmoid(logit), entry k of the 512 anchors at ((x+.5)/16, (y+.5)/16),
                 of the 384 at ((x+.5)/8, (y+.5)/8); box centre = anchor + (o0, o1)/128, size
                 (o2, o3)/128. Checks: IoU of INT8's top detection with FP32's on every crop,
                 and the pooled SQNR of every output.
  mlsd           a segment is a pixel whose score >= 0.1, its ends the pixel plus the offsets
                 (x1, y1, x2, y2 on the 160x160 grid). Checks: the share of segments matched
                 within 1 px at both ends, and the SQNR of the scores."""

import os

import numpy as np

PADDLE_THRESHOLD = 0.3
PADDLE_LINE_SHARE = 0.2
PADDLE_MIN_IOU = 0.95
BLAZEFACE_MIN_TOP_IOU = 0.95
BLAZEFACE_MIN_SQNR_DB = 25.0
MLSD_SCORE_THRESHOLD = 0.1
MLSD_MATCH_PX = 1.0
MLSD_MIN_MATCHED = 0.90
MLSD_MIN_SCORE_SQNR_DB = 20.0


def _by_name(outs):
    return dict(outs)


def _read_boxes(path):
    with open(path) as f:
        return [tuple(int(v) for v in line.split()) for line in f if line.strip()]


def evaluate_paddleocr(eval_dir, a, b, sq, result, fmt_db):
    inter = union = 0
    lines_a, lines_b, total = set(), set(), 0
    for (s, ra), (_, rb) in zip(a, b):
        ma = ra[0][1][0, 0] > PADDLE_THRESHOLD
        mb = rb[0][1][0, 0] > PADDLE_THRESHOLD
        inter += int(np.sum(ma & mb))
        union += int(np.sum(ma | mb))
        for k, (x0, y0, x1, y1) in enumerate(_read_boxes(os.path.join(eval_dir, s, 'boxes.txt'))):
            total += 1
            if ma[y0:y1, x0:x1].mean() >= PADDLE_LINE_SHARE:
                lines_a.add((s, k))
            if mb[y0:y1, x0:x1].mean() >= PADDLE_LINE_SHARE:
                lines_b.add((s, k))
    iou = inter / union if union else 1.0
    lost, gained = sorted(lines_a - lines_b), sorted(lines_b - lines_a)
    out_name = a[0][1][0][0]
    result.figures['accuracy'] = (f'mask IoU {iou:.4f}, lines {len(lines_b)}/{total} (FP32 {len(lines_a)}), '
                                  f'SQNR {fmt_db(sq[out_name][0])} dB')
    result.check(iou >= PADDLE_MIN_IOU, kind='mask_iou', value=iou,
                 text=f'text mask (p > {PADDLE_THRESHOLD}) IoU against FP32 {iou:.4f} over {len(a)} eval '
                 f'scenes (need >= {PADDLE_MIN_IOU})')
    result.check(not lost and not gained, kind='lines', value=len(lost) + len(gained),
                 text=f'the same text lines found as FP32: FP32 {len(lines_a)}/{total}, INT8 {len(lines_b)}/{total}'
                 + (f', lost {lost}' if lost else '') + (f', gained {gained}' if gained else ''))


def _blazeface_anchors():
    anchors = []
    for cells, per_cell in ((16, 2), (8, 6)):
        for y in range(cells):
            for x in range(cells):
                anchors.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell)
    return np.array(anchors)


def _box_iou(p, q):
    iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
    ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
    inter = iw * ih
    area = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter
    return inter / area if area > 0 else 0.0


def _blazeface_top(outs):
    """(score, [x0, y0, x1, y1] in pixels of the 128x128 frame) of the best anchor."""
    o = [v for _, v in outs]
    logits = np.concatenate([o[0].reshape(-1), o[1].reshape(-1)]).astype(np.float64)
    boxes = np.concatenate([o[2].reshape(-1, 16), o[3].reshape(-1, 16)]).astype(np.float64)
    prob = 1 / (1 + np.exp(-np.clip(logits, -80, 80)))
    i = int(np.argmax(prob))
    centre = _blazeface_anchors()[i] + boxes[i, :2] / 128
    size = boxes[i, 2:4] / 128
    return prob[i], np.concatenate([centre - size / 2, centre + size / 2]) * 128


def evaluate_blazeface(eval_dir, a, b, sq, result, fmt_db):
    ious = []
    for (s, ra), (_, rb) in zip(a, b):
        pa, box_a = _blazeface_top(ra)
        pb, box_b = _blazeface_top(rb)
        ious.append((_box_iou(box_a, box_b), s))
        result.note(f'{s}: top detection FP32 p={pa:.3f}, INT8 p={pb:.3f}, IoU {ious[-1][0]:.3f}')
    worst = min(ious)
    result.check(worst[0] >= BLAZEFACE_MIN_TOP_IOU, kind='top_iou', value=worst[0],
                 text=f'top detection IoU against FP32 >= {BLAZEFACE_MIN_TOP_IOU} on every one of {len(a)} crops: '
                 f'worst {worst[1]} {worst[0]:.3f}, mean {np.mean([v for v, _ in ious]):.3f}')
    # One check on the worst output, so that a known-shortfall bound holds all four.
    parts = [f'{n} {fmt_db(v[0])} dB' for n, v in sq.items()]
    low = min(sq.items(), key=lambda item: item[1][0])
    result.check(low[1][0] >= BLAZEFACE_MIN_SQNR_DB, kind='sqnr', value=low[1][0],
                 text=f'pooled SQNR of every output >= {BLAZEFACE_MIN_SQNR_DB:g} dB over {len(a)} eval samples: '
                 + ', '.join(parts) + f"; lowest '{low[0]}'")
    result.figures['accuracy'] = f'top IoU worst {worst[0]:.3f}, SQNR ' + ', '.join(parts)


def _mlsd_segments(outs):
    o = _by_name(outs)
    offsets, scores = o['offsets'][0], o['scores'][0, :, :, 0]
    ys, xs = np.nonzero(scores >= MLSD_SCORE_THRESHOLD)
    ends = offsets[ys, xs].astype(np.float64) + np.stack([xs, ys, xs, ys], axis=1)
    return ends


def _matched(ref, test):
    """How many segments of ref have a segment of test within MLSD_MATCH_PX at both ends."""
    if len(ref) == 0 or len(test) == 0:
        return 0
    d = np.abs(ref[:, None, :] - test[None, :, :]).max(axis=2)
    return int(np.sum(d.min(axis=1) <= MLSD_MATCH_PX))


def evaluate_mlsd(eval_dir, a, b, sq, result, fmt_db):
    n_a = n_b = got = 0
    for (s, ra), (_, rb) in zip(a, b):
        sa, sb = _mlsd_segments(ra), _mlsd_segments(rb)
        m = _matched(sa, sb)
        result.note(f'{s}: FP32 {len(sa)} segments, INT8 {len(sb)}, {m} of FP32 matched within {MLSD_MATCH_PX:g} px')
        n_a, n_b, got = n_a + len(sa), n_b + len(sb), got + m
    # Over the larger count: a segment INT8 adds counts against it like one it loses.
    share = got / max(n_a, n_b, 1)
    result.check(share >= MLSD_MIN_MATCHED, kind='segments', value=share,
                 text=f'segments matching FP32 within {MLSD_MATCH_PX:g} px at both ends: {got} of FP32 {n_a} '
                 f'(INT8 has {n_b}) = {100 * share:.1f} % of the larger count (need >= {100 * MLSD_MIN_MATCHED:.0f} %)')
    score = sq['scores']
    result.check(score[0] >= MLSD_MIN_SCORE_SQNR_DB, kind='sqnr', value=score[0],
                 text=f"output 'scores' SQNR {fmt_db(score[0])} dB over {len(a)} eval samples "
                 f'(worst sample {score[2]} {fmt_db(score[1])} dB; need >= {MLSD_MIN_SCORE_SQNR_DB:g})')
    result.note(f"output 'offsets' SQNR {fmt_db(sq['offsets'][0])} dB (no bound: offsets matter where a "
                'segment is, which the match above judges)')
    result.figures['accuracy'] = (f'segments {100 * share:.1f} %, SQNR scores {fmt_db(score[0])} dB, '
                                  f"offsets {fmt_db(sq['offsets'][0])} dB")

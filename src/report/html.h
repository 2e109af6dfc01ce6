/*
 * The HTML report (`--html FILE` on the main command and on `compare`): one
 * self-contained page, no network, drawn by a small inline script from the
 * report embedded as JSON.  The same inputs give the same bytes.
 *
 * Everything the page shows comes from the structures below; a section
 * whose source is NULL (no per-layer comparison when there were no samples,
 * no quantization for `compare`) is left out of the page, not faked.
 */
#ifndef MQ_HTML_H
#define MQ_HTML_H

#include <stdio.h>

#include "report/divergence.h"
#include "report/report.h"
#include "util/error.h"

/* One figure of an accuracy check against a target, per graph output. */
struct mq_html_check {
    const char *output;
    const char *metric;     /* "sqnr_db", "top1", ... */
    double value;
    double target;          /* NaN: none */
    int pass;               /* 1 met, 0 missed, -1 not judged */
};

struct mq_html_report {
    /* The command as typed: `command` ("onnx-monoquant", "onnx-monoquant compare") and then
       args[0..n_args), quoted where the shell would need it. */
    const char *command;
    char *const *args;
    int n_args;
    const struct mq_report *quant;            /* the quantization; NULL for `compare` */
    const char *model_a, *model_b;            /* for `compare` (quant names them otherwise) */
    const struct mq_divergence_result *compare;  /* B against FP32 A; NULL: not measured */
    int compare_per_layer;                    /* compare->layers is meaningful */
    const char *compare_inputs;               /* the samples it ran on */
    const char *compare_note;                 /* shown when compare is NULL: why */
    const struct mq_html_check *checks;       /* an accuracy check's figures; may be NULL */
    int n_checks;
};

/* Writes the page; -1 when a write or an allocation failed. */
int mq_html_write(FILE *out, const struct mq_html_report *report);
/* Writes the page to `path` atomically. */
int mq_html_save(const char *path, const struct mq_html_report *report, struct mq_error *err);

/* The report as JSON (the page's data block), not yet escaped for HTML; in html_data.c. */
int mq_html_write_data(FILE *out, const struct mq_html_report *report);

#endif

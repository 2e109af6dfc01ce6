/* The tensors calibration observes, as the quantizer chooses them: every node selected with
   quantize's defaults, then mq_qdq_tensors_to_observe, in a name list for mq_calibrate. */
#ifndef MQ_TESTS_OBSERVE_NAMES_H
#define MQ_TESTS_OBSERVE_NAMES_H

#include <check.h>
#include <string.h>

#include "calib/calibrate.h"
#include "quant/qdq.h"
#include "quant/select.h"
#include "util/error.h"

static inline void observed_names(const Onnx__ModelProto *proto, struct mq_name_list *out)
{
    struct mq_error e;
    struct mq_selection sel = {0};
    struct mq_select_options select = {0};
    ck_assert_msg(mq_select_nodes(proto, &select, &sel, &e) == 0, "%s", e.message);
    struct mq_quant_options o;
    mq_quant_options_default(&o);
    char **names = NULL;
    int n = 0;
    ck_assert_msg(mq_qdq_tensors_to_observe(proto, &sel, &o, &names, &n, &e) == 0, "%s",
                  e.message);
    memset(out, 0, sizeof *out);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(mq_name_list_add(out, names[i], &e), 0);
    mq_name_list_finish(out);
    mq_string_list_free(names, n);
    mq_selection_free(&sel);
}

#endif

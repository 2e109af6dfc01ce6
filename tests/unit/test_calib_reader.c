/*
 * Calibration samples: the four layouts, natural order, --calib-limit, and
 * every way a sample can disagree with the graph inputs.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calib/reader.h"
#include "check_main.h"
#include "model/npy.h"
#include "model/tensor_proto.h"
#include "tmp_tree.h"

static struct mq_error err;
static char root[64];

/* ---- graph inputs ---------------------------------------------------------------------- */

struct input_decl {
    Onnx__ValueInfoProto vi;
    Onnx__TypeProto type;
    Onnx__TypeProto__Tensor tensor;
    Onnx__TensorShapeProto shape;
    Onnx__TensorShapeProto__Dimension dims[MQ_MAX_RANK];
    Onnx__TensorShapeProto__Dimension *dim_ptrs[MQ_MAX_RANK];
};

static struct input_decl decls[4];
static const Onnx__ValueInfoProto *inputs[4];

/* dims: a number fixes the dimension; spec "N" or "?" (free) as strings via params. */
static void declare(int i, const char *name, int dtype, int rank, const int64_t *dims,
                    const char *const *params)
{
    struct input_decl *d = &decls[i];
    memset(d, 0, sizeof *d);
    onnx__value_info_proto__init(&d->vi);
    onnx__type_proto__init(&d->type);
    onnx__type_proto__tensor__init(&d->tensor);
    onnx__tensor_shape_proto__init(&d->shape);
    d->vi.name = (char *)name;
    d->vi.type = &d->type;
    d->type.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    d->type.tensor_type = &d->tensor;
    d->tensor.has_elem_type = 1;
    d->tensor.elem_type = dtype;
    d->tensor.shape = &d->shape;
    d->shape.n_dim = (size_t)rank;
    d->shape.dim = d->dim_ptrs;
    for (int k = 0; k < rank; k++) {
        onnx__tensor_shape_proto__dimension__init(&d->dims[k]);
        d->dim_ptrs[k] = &d->dims[k];
        if (params && params[k]) {
            d->dims[k].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dims[k].dim_param = (char *)params[k];
        } else {
            d->dims[k].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dims[k].dim_value = dims[k];
        }
    }
    inputs[i] = &d->vi;
}

/* The model of most tests: x float32 [N,3], sr int64 scalar. */
static void declare_default(void)
{
    const char *params[2] = {"N", NULL};
    declare(0, "x", MQ_DTYPE_FLOAT, 2, (const int64_t[]){0, 3}, params);
    declare(1, "sr", MQ_DTYPE_INT64, 0, NULL, NULL);
}

/* ---- files ----------------------------------------------------------------------------- */

static void make_root(void)
{
    strcpy(root, "/tmp/mq-calib-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
}

static char *path_of(const char *rel) { return tt_path(root, rel); }

static void make_dir(const char *rel) { ck_assert_int_eq(mkdir(path_of(rel), 0755), 0); }

static struct mq_tensor tensor(int dtype, int rank, const int64_t *dims, double start)
{
    struct mq_tensor t;
    ck_assert_int_eq(mq_tensor_alloc(&t, dtype, rank, dims, "t", &err), 0);
    for (int64_t i = 0; i < t.count; i++) {
        double v = start + (double)i;
        switch (dtype) {
        case MQ_DTYPE_FLOAT: ((float *)t.data)[i] = (float)v; break;
        case MQ_DTYPE_DOUBLE: ((double *)t.data)[i] = v; break;
        case MQ_DTYPE_INT64: ((int64_t *)t.data)[i] = (int64_t)v; break;
        case MQ_DTYPE_INT32: ((int32_t *)t.data)[i] = (int32_t)v; break;
        default: break;
        }
    }
    return t;
}

static void write_pb(const char *rel, const char *name, int dtype, int rank, const int64_t *dims,
                     double start)
{
    struct mq_tensor t = tensor(dtype, rank, dims, start);
    ck_assert_int_eq(mq_tensor_write_pb(path_of(rel), &t, name, &err), 0);
    mq_tensor_free(&t);
}

static void write_npy(const char *rel, int dtype, int rank, const int64_t *dims, double start)
{
    struct mq_tensor t = tensor(dtype, rank, dims, start);
    ck_assert_int_eq(mq_npy_write(path_of(rel), &t, &err), 0);
    mq_tensor_free(&t);
}

static void put16(FILE *f, unsigned v)
{
    fputc((int)(v & 0xff), f);
    fputc((int)((v >> 8) & 0xff), f);
}

static void put32(FILE *f, uint32_t v)
{
    put16(f, v & 0xffff);
    put16(f, v >> 16);
}

/* The fields from the method to the extra length, laid out alike in the local header and
 * the central directory; the data is never really compressed, so both sizes are one. */
static void put_entry_fields(FILE *f, int method, uint32_t crc, uint32_t size, size_t name_len)
{
    put16(f, (unsigned)method);
    put32(f, 0);
    put32(f, crc);
    put32(f, size);
    put32(f, size);
    put16(f, (unsigned)name_len);
    put16(f, 0);
}

/* A stored (or, with method 8, claimed-compressed) ZIP of .npy members, as numpy.savez writes. */
static void write_npz(const char *rel, int n, const char *const *names,
                      const struct mq_tensor *tensors, int method)
{
    FILE *f = fopen(path_of(rel), "wb");
    ck_assert_ptr_nonnull(f);
    uint32_t offsets[8], crcs[8], sizes[8];
    for (int i = 0; i < n; i++) {
        uint8_t *bytes;
        size_t size;
        ck_assert_int_eq(mq_npy_encode(&tensors[i], &bytes, &size, &err), 0);
        offsets[i] = (uint32_t)ftell(f);
        crcs[i] = mq_crc32(0, bytes, size);
        sizes[i] = (uint32_t)size;
        size_t name_len = strlen(names[i]) + 4;
        put32(f, 0x04034b50);
        put16(f, 20);
        put16(f, 0);
        put_entry_fields(f, method, crcs[i], sizes[i], name_len);
        fprintf(f, "%s.npy", names[i]);
        fwrite(bytes, 1, size, f);
        free(bytes);
    }
    uint32_t cd = (uint32_t)ftell(f);
    for (int i = 0; i < n; i++) {
        put32(f, 0x02014b50);
        put16(f, 20);
        put16(f, 20);
        put16(f, 0);
        put_entry_fields(f, method, crcs[i], sizes[i], strlen(names[i]) + 4);
        put16(f, 0);
        put16(f, 0);
        put16(f, 0);
        put32(f, 0);
        put32(f, offsets[i]);
        fprintf(f, "%s.npy", names[i]);
    }
    uint32_t cd_size = (uint32_t)ftell(f) - cd;
    put32(f, 0x06054b50);
    put16(f, 0);
    put16(f, 0);
    put16(f, (unsigned)n);
    put16(f, (unsigned)n);
    put32(f, cd_size);
    put32(f, cd);
    put16(f, 0);
    fclose(f);
}

static void expect_open_error(const char *dir, int n_inputs, const char *const *needles)
{
    struct mq_calib_source *src = NULL;
    int rc = mq_calib_source_open(dir, inputs, n_inputs, 0, &src, &err);
    ck_assert_msg(rc != 0, "opening %s should fail", dir);
    ck_assert_ptr_null(src);
    for (int i = 0; needles[i]; i++)
        ck_assert_msg(strstr(err.message, needles[i]) != NULL, "message '%s' lacks '%s'",
                      err.message, needles[i]);
}

#define EXPECT_ERROR(dir, n, ...) expect_open_error(dir, n, (const char *const[]){__VA_ARGS__, NULL})

/* ---- layout 1: pb folders -------------------------------------------------------------- */

static void good_pb_sample(const char *folder, double start)
{
    char rel[128];
    make_dir(folder);
    snprintf(rel, sizeof rel, "%s/input_0.pb", folder);
    write_pb(rel, "x", MQ_DTYPE_FLOAT, 2, (const int64_t[]){2, 3}, start);
    snprintf(rel, sizeof rel, "%s/input_1.pb", folder);
    write_pb(rel, "sr", MQ_DTYPE_INT64, 0, NULL, 16000);
    snprintf(rel, sizeof rel, "%s/output_0.pb", folder); /* ignored */
    write_pb(rel, "y", MQ_DTYPE_FLOAT, 1, (const int64_t[]){1}, 0);
}

START_TEST(pb_folders_in_natural_order)
{
    declare_default();
    make_root();
    good_pb_sample("test_data_set_10", 10);
    good_pb_sample("test_data_set_2", 2);
    good_pb_sample("test_data_set_1", 1);
    mkdir(path_of(".hidden"), 0755); /* skipped */
    FILE *f = fopen(path_of("README.txt"), "w"); /* other files are ignored */
    fclose(f);
    struct mq_calib_source *src;
    ck_assert_int_eq(mq_calib_source_open(root, inputs, 2, 0, &src, &err), 0);
    ck_assert_int_eq(mq_calib_source_layout(src), MQ_CALIB_LAYOUT_PB_FOLDERS);
    ck_assert_int_eq(mq_calib_source_count(src), 3);
    ck_assert(strstr(mq_calib_source_sample_name(src, 0), "test_data_set_1") != NULL);
    ck_assert(strstr(mq_calib_source_sample_name(src, 1), "test_data_set_2") != NULL);
    ck_assert(strstr(mq_calib_source_sample_name(src, 2), "test_data_set_10") != NULL);
    struct mq_tensor in[2];
    ck_assert_int_eq(mq_calib_source_load(src, 2, in, &err), 0);
    ck_assert(((float *)in[0].data)[0] == 10.0f);
    ck_assert_int_eq(in[1].dtype, MQ_DTYPE_INT64); /* integer inputs pass through */
    ck_assert_int_eq(((int64_t *)in[1].data)[0], 16000);
    mq_tensor_free(&in[0]);
    mq_tensor_free(&in[1]);
    mq_calib_source_free(src);
    /* --calib-limit takes the first N in that order. */
    ck_assert_int_eq(mq_calib_source_open(root, inputs, 2, 2, &src, &err), 0);
    ck_assert_int_eq(mq_calib_source_count(src), 2);
    ck_assert(strstr(mq_calib_source_sample_name(src, 1), "test_data_set_2") != NULL);
    mq_calib_source_free(src);
    tt_remove(root);
}
END_TEST

START_TEST(pb_matched_by_position_when_names_fail)
{
    declare_default();
    make_root();
    make_dir("s0");
    /* Unnamed and mis-named: the position decides. */
    write_pb("s0/input_0.pb", "", MQ_DTYPE_FLOAT, 2, (const int64_t[]){1, 3}, 0);
    write_pb("s0/input_1.pb", "sample_rate", MQ_DTYPE_INT64, 0, NULL, 8000);
    make_dir("s1");
    /* Names win over positions. */
    write_pb("s1/input_0.pb", "sr", MQ_DTYPE_INT64, 0, NULL, 8000);
    write_pb("s1/input_1.pb", "x", MQ_DTYPE_FLOAT, 2, (const int64_t[]){4, 3}, 0);
    struct mq_calib_source *src;
    ck_assert_int_eq(mq_calib_source_open(root, inputs, 2, 0, &src, &err), 0);
    struct mq_tensor in[2];
    ck_assert_int_eq(mq_calib_source_load(src, 1, in, &err), 0);
    ck_assert_int_eq(in[0].dims[0], 4);
    ck_assert_int_eq(in[1].dtype, MQ_DTYPE_INT64);
    mq_tensor_free(&in[0]);
    mq_tensor_free(&in[1]);
    mq_calib_source_free(src);
    tt_remove(root);
}
END_TEST

START_TEST(pb_bad_samples)
{
    declare_default();
    make_root();
    char dir[512];

    /* Missing input. */
    make_dir("missing");
    make_dir("missing/s");
    write_pb("missing/s/input_0.pb", "x", MQ_DTYPE_FLOAT, 2, (const int64_t[]){1, 3}, 0);
    snprintf(dir, sizeof dir, "%s/missing", root);
    EXPECT_ERROR(dir, 2, "missing/s", "no data for graph input 'sr'", "int64 []", "input_1.pb");

    /* Extra input. */
    make_dir("extra");
    good_pb_sample("extra/s", 0);
    write_pb("extra/s/input_2.pb", "z", MQ_DTYPE_FLOAT, 1, (const int64_t[]){5}, 0);
    snprintf(dir, sizeof dir, "%s/extra", root);
    EXPECT_ERROR(dir, 2, "input_2.pb", "'z' (float32 [5])", "matches no graph input",
                 "'x' float32 [N,3]");

    /* Wrong element type. */
    make_dir("type");
    make_dir("type/s");
    write_pb("type/s/input_0.pb", "x", MQ_DTYPE_DOUBLE, 2, (const int64_t[]){1, 3}, 0);
    write_pb("type/s/input_1.pb", "sr", MQ_DTYPE_INT64, 0, NULL, 1);
    snprintf(dir, sizeof dir, "%s/type", root);
    EXPECT_ERROR(dir, 2, "type/s/input_0.pb", "input 'x'", "float64", "float32 [N,3]",
                 "float64 [1,3]");

    /* Wrong rank. */
    make_dir("rank");
    make_dir("rank/s");
    write_pb("rank/s/input_0.pb", "x", MQ_DTYPE_FLOAT, 3, (const int64_t[]){1, 1, 3}, 0);
    write_pb("rank/s/input_1.pb", "sr", MQ_DTYPE_INT64, 0, NULL, 1);
    snprintf(dir, sizeof dir, "%s/rank", root);
    EXPECT_ERROR(dir, 2, "rank/s/input_0.pb", "input 'x' has rank 3", "expects rank 2",
                 "[N,3]", "[1,1,3]");

    /* Fixed dimension differs. */
    make_dir("dim");
    make_dir("dim/s");
    write_pb("dim/s/input_0.pb", "x", MQ_DTYPE_FLOAT, 2, (const int64_t[]){1, 4}, 0);
    write_pb("dim/s/input_1.pb", "sr", MQ_DTYPE_INT64, 0, NULL, 1);
    snprintf(dir, sizeof dir, "%s/dim", root);
    EXPECT_ERROR(dir, 2, "dim/s/input_0.pb", "input 'x' has 4 in dimension 1",
                 "fixes it at 3", "float32 [N,3]", "float32 [1,4]");

    /* Two files for one input. */
    make_dir("twice");
    good_pb_sample("twice/s", 0);
    write_pb("twice/s/input_2.pb", "x", MQ_DTYPE_FLOAT, 2, (const int64_t[]){1, 3}, 0);
    snprintf(dir, sizeof dir, "%s/twice", root);
    EXPECT_ERROR(dir, 2, "both", "input_0.pb", "input_2.pb", "'x'");

    /* Only the bad sample fails, after good ones: the error names it. */
    make_dir("late");
    good_pb_sample("late/test_data_set_0", 0);
    good_pb_sample("late/test_data_set_1", 0);
    make_dir("late/test_data_set_2");
    write_pb("late/test_data_set_2/input_0.pb", "x", MQ_DTYPE_FLOAT, 2,
             (const int64_t[]){1, 2}, 0);
    write_pb("late/test_data_set_2/input_1.pb", "sr", MQ_DTYPE_INT64, 0, NULL, 1);
    snprintf(dir, sizeof dir, "%s/late", root);
    EXPECT_ERROR(dir, 2, "test_data_set_2/input_0.pb", "fixes it at 3");
    /* ...unless --calib-limit stops before it. */
    struct mq_calib_source *src;
    ck_assert_int_eq(mq_calib_source_open(dir, inputs, 2, 2, &src, &err), 0);
    mq_calib_source_free(src);

    /* A folder without inputs, a corrupt .pb. */
    make_dir("empty");
    make_dir("empty/s");
    snprintf(dir, sizeof dir, "%s/empty", root);
    EXPECT_ERROR(dir, 2, "empty/s", "no input_K.pb");
    make_dir("corrupt");
    make_dir("corrupt/s");
    FILE *f = fopen(path_of("corrupt/s/input_0.pb"), "wb");
    fputs("\xff\xff\xff\xff garbage", f);
    fclose(f);
    snprintf(dir, sizeof dir, "%s/corrupt", root);
    EXPECT_ERROR(dir, 2, "corrupt/s/input_0.pb");
    tt_remove(root);
}
END_TEST

START_TEST(symbolic_dimension_must_agree_within_a_sample)
{
    const char *params[1] = {"N"};
    declare(0, "a", MQ_DTYPE_FLOAT, 1, (const int64_t[]){0}, params);
    declare(1, "b", MQ_DTYPE_FLOAT, 1, (const int64_t[]){0}, params);
    make_root();
    make_dir("s");
    write_pb("s/input_0.pb", "a", MQ_DTYPE_FLOAT, 1, (const int64_t[]){2}, 0);
    write_pb("s/input_1.pb", "b", MQ_DTYPE_FLOAT, 1, (const int64_t[]){3}, 0);
    EXPECT_ERROR(root, 2, "input 'b' has 3 in dimension 0 ('N')", "input 'a'", "'N' = 2");
    tt_remove(root);
}
END_TEST

/* ---- layout 2: npy folders ------------------------------------------------------------- */

START_TEST(npy_folders)
{
    declare_default();
    make_root();
    for (int s = 0; s < 3; s++) {
        char rel[64];
        snprintf(rel, sizeof rel, "sample%d", s);
        make_dir(rel);
        snprintf(rel, sizeof rel, "sample%d/x.npy", s);
        write_npy(rel, MQ_DTYPE_FLOAT, 2, (const int64_t[]){s + 1, 3}, s);
        snprintf(rel, sizeof rel, "sample%d/sr.npy", s);
        write_npy(rel, MQ_DTYPE_INT64, 0, NULL, 16000);
    }
    struct mq_calib_source *src;
    ck_assert_int_eq(mq_calib_source_open(root, inputs, 2, 0, &src, &err), 0);
    ck_assert_int_eq(mq_calib_source_layout(src), MQ_CALIB_LAYOUT_NPY_FOLDERS);
    ck_assert_int_eq(mq_calib_source_count(src), 3);
    struct mq_tensor in[2];
    ck_assert_int_eq(mq_calib_source_load(src, 2, in, &err), 0);
    ck_assert_int_eq(in[0].dims[0], 3);
    ck_assert(((float *)in[0].data)[1] == 3.0f);
    mq_tensor_free(&in[0]);
    mq_tensor_free(&in[1]);
    mq_calib_source_free(src);
    /* An extra array, then a missing one, then a wrong type. */
    write_npy("sample1/y.npy", MQ_DTYPE_FLOAT, 1, (const int64_t[]){2}, 0);
    EXPECT_ERROR(root, 2, "sample1/y.npy", "'y' (float32 [2])", "matches no graph input");
    unlink(path_of("sample1/y.npy"));
    unlink(path_of("sample1/sr.npy"));
    EXPECT_ERROR(root, 2, "sample1", "no data for graph input 'sr'", "sr.npy");
    write_npy("sample1/sr.npy", MQ_DTYPE_INT32, 0, NULL, 16000);
    EXPECT_ERROR(root, 2, "sample1/sr.npy", "element type int32", "expects int64");
    tt_remove(root);
}
END_TEST

/* ---- layout 3: npz --------------------------------------------------------------------- */

START_TEST(npz_archives)
{
    declare_default();
    make_root();
    const char *names[3] = {"x", "sr", "extra"};
    for (int s = 0; s < 12; s++) {
        struct mq_tensor t[2] = {tensor(MQ_DTYPE_FLOAT, 2, (const int64_t[]){1, 3}, s),
                                 tensor(MQ_DTYPE_INT64, 0, NULL, 16000)};
        char rel[64];
        snprintf(rel, sizeof rel, "chunk_%d.npz", s);
        write_npz(rel, 2, names, t, 0);
        mq_tensor_free(&t[0]);
        mq_tensor_free(&t[1]);
    }
    struct mq_calib_source *src;
    ck_assert_int_eq(mq_calib_source_open(root, inputs, 2, 0, &src, &err), 0);
    ck_assert_int_eq(mq_calib_source_layout(src), MQ_CALIB_LAYOUT_NPZ);
    ck_assert_int_eq(mq_calib_source_count(src), 12);
    ck_assert(strstr(mq_calib_source_sample_name(src, 11), "chunk_11.npz") != NULL);
    struct mq_tensor in[2];
    ck_assert_int_eq(mq_calib_source_load(src, 9, in, &err), 0);
    ck_assert(((float *)in[0].data)[0] == 9.0f);
    mq_tensor_free(&in[0]);
    mq_tensor_free(&in[1]);
    mq_calib_source_free(src);

    struct mq_tensor t[3] = {tensor(MQ_DTYPE_FLOAT, 2, (const int64_t[]){1, 3}, 0),
                             tensor(MQ_DTYPE_INT64, 0, NULL, 1),
                             tensor(MQ_DTYPE_FLOAT, 0, NULL, 1)};
    write_npz("chunk_5.npz", 3, names, t, 0);
    EXPECT_ERROR(root, 2, "chunk_5.npz, member 'extra.npy'", "matches no graph input");
    write_npz("chunk_5.npz", 1, names, t, 0);
    EXPECT_ERROR(root, 2, "chunk_5.npz", "no data for graph input 'sr'", "member 'sr'");
    write_npz("chunk_5.npz", 2, names, t, 8);
    EXPECT_ERROR(root, 2, "chunk_5.npz", "compressed", "numpy.savez_compressed");
    const char *swapped[2] = {"sr", "x"};
    write_npz("chunk_5.npz", 2, swapped, t, 0);
    EXPECT_ERROR(root, 2, "chunk_5.npz, member 'sr.npy'", "input 'sr' has element type float32");
    for (int i = 0; i < 3; i++)
        mq_tensor_free(&t[i]);
    tt_remove(root);
}
END_TEST

/* ---- layout 4: stacked npy ------------------------------------------------------------- */

START_TEST(stacked_npy)
{
    declare_default();
    make_root();
    write_npy("x.npy", MQ_DTYPE_FLOAT, 3, (const int64_t[]){5, 2, 3}, 0);
    write_npy("sr.npy", MQ_DTYPE_INT64, 1, (const int64_t[]){5}, 100);
    struct mq_calib_source *src;
    ck_assert_int_eq(mq_calib_source_open(root, inputs, 2, 0, &src, &err), 0);
    ck_assert_int_eq(mq_calib_source_layout(src), MQ_CALIB_LAYOUT_NPY_STACKED);
    ck_assert_int_eq(mq_calib_source_count(src), 5);
    struct mq_tensor in[2];
    ck_assert_int_eq(mq_calib_source_load(src, 3, in, &err), 0);
    ck_assert_int_eq(in[0].rank, 2);
    ck_assert(((float *)in[0].data)[0] == 18.0f); /* sample 3 starts at element 3*6 */
    ck_assert_int_eq(in[1].rank, 0);
    ck_assert_int_eq(((int64_t *)in[1].data)[0], 103);
    mq_tensor_free(&in[0]);
    mq_tensor_free(&in[1]);
    mq_calib_source_free(src);
    ck_assert_int_eq(mq_calib_source_open(root, inputs, 2, 3, &src, &err), 0);
    ck_assert_int_eq(mq_calib_source_count(src), 3);
    mq_calib_source_free(src);

    write_npy("sr.npy", MQ_DTYPE_INT64, 1, (const int64_t[]){4}, 100);
    EXPECT_ERROR(root, 2, "x.npy holds 5 samples", "sr.npy holds 4", "first axis");
    /* The sample axis forgotten: rank one short, with a hint. */
    write_npy("sr.npy", MQ_DTYPE_INT64, 1, (const int64_t[]){5}, 100);
    write_npy("x.npy", MQ_DTYPE_FLOAT, 2, (const int64_t[]){5, 3}, 0);
    EXPECT_ERROR(root, 2, "x.npy", "rank 1 but the model expects rank 2", "first axis");
    tt_remove(root);
}
END_TEST

/* ---- the folder itself ----------------------------------------------------------------- */

START_TEST(folder_problems)
{
    declare_default();
    EXPECT_ERROR("/nonexistent/calib/dir", 2, "/nonexistent/calib/dir", "cannot open");
    make_root();
    EXPECT_ERROR(root, 2, "no calibration samples", "test_data_set_N/input_K.pb");
    good_pb_sample("s0", 0);
    write_npy("x.npy", MQ_DTYPE_FLOAT, 3, (const int64_t[]){5, 2, 3}, 0);
    EXPECT_ERROR(root, 2, "mixes calibration layouts");
    unlink(path_of("x.npy"));
    make_dir("s1");
    write_npy("s1/x.npy", MQ_DTYPE_FLOAT, 2, (const int64_t[]){1, 3}, 0);
    write_npy("s1/sr.npy", MQ_DTYPE_INT64, 0, NULL, 0);
    EXPECT_ERROR(root, 2, "s1", "holds .npy files", ".pb");
    tt_remove(root);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("calib_reader");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, pb_folders_in_natural_order);
    tcase_add_test(tc, pb_matched_by_position_when_names_fail);
    tcase_add_test(tc, pb_bad_samples);
    tcase_add_test(tc, symbolic_dimension_must_agree_within_a_sample);
    tcase_add_test(tc, npy_folders);
    tcase_add_test(tc, npz_archives);
    tcase_add_test(tc, stacked_npy);
    tcase_add_test(tc, folder_problems);
    return mq_check_run(s, tc);
}

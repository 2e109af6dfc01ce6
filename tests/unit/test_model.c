/* Model loading, validation, external data and atomic saving. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_main.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "model/wire_check.h"
#include "tmp_tree.h"
#include "util/fileio.h"

static char tmpdir[256];

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mq-test-model-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void) { tt_remove(tmpdir); }

static char *path_in_tmp(const char *name) { return tt_path(tmpdir, name); }

/* A one-node model (Identity of initializer W) whose initializer the caller shapes. */
static Onnx__ModelProto *model_new(Onnx__TensorProto **init_out)
{
    Onnx__ModelProto *m = calloc(1, sizeof *m);
    onnx__model_proto__init(m);
    m->has_ir_version = 1;
    m->ir_version = 8;
    m->opset_import = calloc(1, sizeof *m->opset_import);
    m->opset_import[0] = calloc(1, sizeof **m->opset_import);
    onnx__operator_set_id_proto__init(m->opset_import[0]);
    m->opset_import[0]->has_version = 1;
    m->opset_import[0]->version = 13;
    m->n_opset_import = 1;
    Onnx__GraphProto *g = m->graph = calloc(1, sizeof *g);
    onnx__graph_proto__init(g);
    g->name = strdup("g");
    Onnx__TensorProto *t = calloc(1, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = strdup("W");
    t->has_data_type = 1;
    t->data_type = 1;
    t->n_dims = 1;
    t->dims = calloc(1, sizeof(int64_t));
    t->dims[0] = 4;
    t->has_raw_data = 1;
    t->raw_data.len = 16;
    t->raw_data.data = calloc(1, 16);
    g->initializer = calloc(1, sizeof *g->initializer);
    g->initializer[0] = t;
    g->n_initializer = 1;
    Onnx__NodeProto *n = calloc(1, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = strdup("Identity");
    n->input = calloc(1, sizeof(char *));
    n->input[0] = strdup("W");
    n->n_input = 1;
    n->output = calloc(1, sizeof(char *));
    n->output[0] = strdup("Y");
    n->n_output = 1;
    Onnx__AttributeProto *a = calloc(1, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = strdup("zero");
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = 0;
    n->attribute = calloc(1, sizeof *n->attribute);
    n->attribute[0] = a;
    n->n_attribute = 1;
    g->node = calloc(1, sizeof *g->node);
    g->node[0] = n;
    g->n_node = 1;
    Onnx__ValueInfoProto *out = calloc(1, sizeof *out);
    onnx__value_info_proto__init(out);
    out->name = strdup("Y");
    g->output = calloc(1, sizeof *g->output);
    g->output[0] = out;
    g->n_output = 1;
    *init_out = t;
    return m;
}

static void write_model(Onnx__ModelProto *m, const char *path)
{
    size_t size = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = malloc(size);
    onnx__model_proto__pack(m, buf);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, size, f), size);
    fclose(f);
    free(buf);
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    if (n)
        ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void expect_load_error(const char *path, const char *fragment)
{
    struct mq_model *model = NULL;
    struct mq_error err = {{0}};
    ck_assert_int_ne(mq_model_load(path, &model, &err), 0);
    ck_assert_ptr_null(model);
    ck_assert_msg(strstr(err.message, fragment) != NULL, "message '%s' lacks '%s'", err.message,
                  fragment);
}

static void set_external(Onnx__TensorProto *t, const char *location, const char *offset,
                         const char *length)
{
    free(t->raw_data.data);
    t->raw_data.data = NULL;
    t->raw_data.len = 0;
    t->has_raw_data = 0;
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    const char *keys[] = {"location", "offset", "length"};
    const char *values[] = {location, offset, length};
    t->external_data = calloc(3, sizeof *t->external_data);
    for (int i = 0; i < 3; i++) {
        if (!values[i])
            continue;
        Onnx__StringStringEntryProto *e = calloc(1, sizeof *e);
        onnx__string_string_entry_proto__init(e);
        e->key = strdup(keys[i]);
        e->value = strdup(values[i]);
        t->external_data[t->n_external_data++] = e;
    }
}

START_TEST(loads_valid_model_and_keeps_zero_attribute)
{
    Onnx__TensorProto *t;
    Onnx__ModelProto *m = model_new(&t);
    write_model(m, path_in_tmp("ok.onnx"));
    onnx__model_proto__free_unpacked(m, NULL);
    struct mq_model *model;
    struct mq_error err;
    ck_assert_int_eq(mq_model_load(path_in_tmp("ok.onnx"), &model, &err), 0);
    ck_assert_int_eq(mq_model_opset(model, ""), 13);
    ck_assert_int_eq(mq_model_opset(model, "ai.onnx"), 13);
    ck_assert_int_eq(mq_model_opset(model, "com.microsoft"), -1);
    const Onnx__AttributeProto *a = model->proto->graph->node[0]->attribute[0];
    ck_assert(a->has_i);
    ck_assert_int_eq(a->i, 0);
    mq_model_free(model);
}
END_TEST

START_TEST(rejects_missing_empty_png_random_truncated)
{
    expect_load_error(path_in_tmp("missing.onnx"), "cannot open");
    write_bytes(path_in_tmp("empty.onnx"), "", 0);
    expect_load_error(path_in_tmp("empty.onnx"), "empty file");
    write_bytes(path_in_tmp("png.onnx"), "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
    expect_load_error(path_in_tmp("png.onnx"), "not an ONNX model");
    uint8_t noise[4096];
    srand(7);
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (uint8_t)rand();
    write_bytes(path_in_tmp("noise.onnx"), noise, sizeof noise);
    struct mq_model *model = NULL;
    struct mq_error err;
    ck_assert_int_ne(mq_model_load(path_in_tmp("noise.onnx"), &model, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "noise.onnx"));

    Onnx__TensorProto *t;
    Onnx__ModelProto *m = model_new(&t);
    size_t size = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = malloc(size);
    onnx__model_proto__pack(m, buf);
    onnx__model_proto__free_unpacked(m, NULL);
    for (size_t cut = 1; cut < size; cut++) {
        ck_assert_int_ne(mq_model_load_buffer(buf, cut, NULL, "cut", &model, &err), 0);
        ck_assert_ptr_null(model);
    }
    free(buf);
}
END_TEST

START_TEST(rejects_huge_claims_and_length_mismatch)
{
    Onnx__TensorProto *t;
    Onnx__ModelProto *m = model_new(&t);
    t->dims[0] = 1000000000000LL;
    write_model(m, path_in_tmp("huge.onnx"));
    expect_load_error(path_in_tmp("huge.onnx"), "tensor 'W'");
    t->dims[0] = 5;
    write_model(m, path_in_tmp("mismatch.onnx"));
    expect_load_error(path_in_tmp("mismatch.onnx"), "raw_data holds 16 bytes");
    onnx__model_proto__free_unpacked(m, NULL);
}
END_TEST

START_TEST(wire_check_bounds_nesting)
{
    /* GraphProto.node (1) -> NodeProto.attribute (5) -> AttributeProto.g (6) -> ... */
    enum { LEVELS = 400 };
    static uint8_t buf[LEVELS * 16];
    size_t len = 0;
    for (int i = 0; i < LEVELS; i++) {
        static const uint8_t tags[3] = {(1 << 3) | 2, (5 << 3) | 2, (6 << 3) | 2};
        uint8_t tag = tags[(LEVELS - 1 - i) % 3];
        uint8_t tmp[sizeof buf];
        size_t n = 0;
        tmp[n++] = tag;
        size_t v = len;
        do {
            tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
            v >>= 7;
        } while (v);
        ck_assert_uint_lt(n + len, sizeof buf);
        memcpy(tmp + n, buf, len);
        memcpy(buf, tmp, n + len);
        len += n;
    }
    struct mq_error err;
    ck_assert_int_ne(mq_wire_check(buf, len, &onnx__graph_proto__descriptor, "deep", &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "nested deeper"));
}
END_TEST

START_TEST(external_data_is_resolved_and_confined)
{
    float values[4] = {1, 2, 3, 4};
    uint8_t file[64] = {0};
    memcpy(file + 8, values, 16);
    write_bytes(path_in_tmp("w.bin"), file, sizeof file);

    Onnx__TensorProto *t;
    Onnx__ModelProto *m = model_new(&t);
    set_external(t, "w.bin", "8", "16");
    write_model(m, path_in_tmp("ext.onnx"));
    struct mq_model *model;
    struct mq_error err;
    ck_assert_msg(mq_model_load(path_in_tmp("ext.onnx"), &model, &err) == 0, "%s", err.message);
    struct mq_tensor w;
    ck_assert_int_eq(mq_tensor_from_proto(model->proto->graph->initializer[0], "W", &w, &err), 0);
    ck_assert(((float *)w.data)[3] == 4.0f);
    mq_tensor_free(&w);
    mq_model_free(model);
    onnx__model_proto__free_unpacked(m, NULL);

    struct {
        const char *location, *offset, *length, *fragment;
    } bad[] = {
        {"/etc/passwd", "0", "16", "absolute or leaves"},
        {"../w.bin", "0", "16", "absolute or leaves"},
        {"sub/../../w.bin", "0", "16", "absolute or leaves"},
        {"nope.bin", "0", "16", "not found"},
        {"w.bin", "100", "16", "past the end"},
        {"w.bin", "56", "16", "needs bytes"},
        {"w.bin", "0", "12", "disagrees"},
        {"link.bin", "0", "16", "outside"},
    };
    ck_assert_int_eq(symlink("/etc/hostname", path_in_tmp("link.bin")), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = model_new(&t);
        set_external(t, bad[i].location, bad[i].offset, bad[i].length);
        write_model(m, path_in_tmp("bad.onnx"));
        onnx__model_proto__free_unpacked(m, NULL);
        expect_load_error(path_in_tmp("bad.onnx"), bad[i].fragment);
    }
}
END_TEST

START_TEST(save_is_atomic_and_keeps_unknown_fields)
{
    Onnx__TensorProto *t;
    Onnx__ModelProto *m = model_new(&t);
    size_t size = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = malloc(size + 8);
    onnx__model_proto__pack(m, buf);
    onnx__model_proto__free_unpacked(m, NULL);
    /* Field 99, varint 42: unknown to our schema. */
    const uint8_t unknown[] = {0x98, 0x06, 42};
    memcpy(buf + size, unknown, sizeof unknown);
    write_bytes(path_in_tmp("unknown.onnx"), buf, size + sizeof unknown);
    free(buf);

    struct mq_model *model;
    struct mq_error err;
    ck_assert_int_eq(mq_model_load(path_in_tmp("unknown.onnx"), &model, &err), 0);
    ck_assert_int_eq(mq_model_save(model->proto, path_in_tmp("saved.onnx"), NULL, &err), 0);
    uint8_t *saved;
    size_t saved_size;
    ck_assert_int_eq(mq_file_read(path_in_tmp("saved.onnx"), 1 << 20, &saved, &saved_size, &err),
                     0);
    ck_assert_uint_eq(saved_size, size + sizeof unknown);
    ck_assert(memmem(saved, saved_size, unknown, sizeof unknown) != NULL);
    free(saved);

    /* An output folder that does not exist: error, nothing written. */
    ck_assert_int_ne(mq_model_save(model->proto, path_in_tmp("no/such/dir/out.onnx"), NULL, &err),
                     0);
    ck_assert_ptr_nonnull(strstr(err.message, "out.onnx"));
    /* A path under a regular file. */
    ck_assert_int_ne(mq_model_save(model->proto, path_in_tmp("saved.onnx/x.onnx"), NULL, &err), 0);
    mq_model_free(model);

    ck_assert_int_ne(mq_path_check_distinct(path_in_tmp("saved.onnx"), path_in_tmp("saved.onnx"),
                                            &err), 0);
    ck_assert_int_eq(symlink(path_in_tmp("saved.onnx"), path_in_tmp("alias.onnx")), 0);
    ck_assert_int_ne(mq_path_check_distinct(path_in_tmp("saved.onnx"), path_in_tmp("alias.onnx"),
                                            &err), 0);
    ck_assert_int_eq(mq_path_check_distinct(path_in_tmp("saved.onnx"), path_in_tmp("new.onnx"),
                                            &err), 0);
}
END_TEST

START_TEST(save_external_data_round_trips)
{
    Onnx__TensorProto *t;
    Onnx__ModelProto *m = model_new(&t);
    /* 2000 floats: above the 1 KiB threshold. */
    free(t->raw_data.data);
    t->dims[0] = 2000;
    t->raw_data.len = 8000;
    t->raw_data.data = malloc(8000);
    for (int i = 0; i < 2000; i++)
        ((float *)t->raw_data.data)[i] = (float)i;
    struct mq_save_options opt = {.external_data = 1};
    struct mq_error err;
    ck_assert_int_eq(mq_model_save(m, path_in_tmp("big.onnx"), &opt, &err), 0);
    /* The caller's model is unchanged. */
    ck_assert(t->has_raw_data);
    ck_assert_uint_eq(t->raw_data.len, 8000);
    onnx__model_proto__free_unpacked(m, NULL);
    struct stat st;
    ck_assert_int_eq(stat(path_in_tmp("big.onnx.data"), &st), 0);
    ck_assert_int_ge(st.st_size, 8000);
    ck_assert_int_eq(stat(path_in_tmp("big.onnx"), &st), 0);
    ck_assert_int_lt(st.st_size, 1000);
    struct mq_model *model;
    ck_assert_msg(mq_model_load(path_in_tmp("big.onnx"), &model, &err) == 0, "%s", err.message);
    struct mq_tensor w;
    ck_assert_int_eq(mq_tensor_from_proto(model->proto->graph->initializer[0], "W", &w, &err), 0);
    ck_assert(((float *)w.data)[1999] == 1999.0f);
    mq_tensor_free(&w);
    mq_model_free(model);
}
END_TEST

START_TEST(save_external_data_converts_typed_storage)
{
    Onnx__TensorProto *t;
    Onnx__ModelProto *m = model_new(&t);
    free(t->raw_data.data);
    t->raw_data.data = NULL;
    t->raw_data.len = 0;
    t->has_raw_data = 0;
    t->dims[0] = 600;
    t->n_float_data = 600;
    t->float_data = malloc(600 * sizeof(float));
    for (int i = 0; i < 600; i++)
        t->float_data[i] = (float)i * 0.5f;
    struct mq_save_options opt = {.external_data = 1};
    struct mq_error err;
    ck_assert_int_eq(mq_model_save(m, path_in_tmp("typed.onnx"), &opt, &err), 0);
    /* The caller's model keeps its typed storage. */
    ck_assert(!t->has_raw_data);
    ck_assert_uint_eq(t->n_float_data, 600);
    ck_assert(t->float_data[599] == 299.5f);
    onnx__model_proto__free_unpacked(m, NULL);
    struct stat st;
    ck_assert_int_eq(stat(path_in_tmp("typed.onnx.data"), &st), 0);
    struct mq_model *model;
    ck_assert_msg(mq_model_load(path_in_tmp("typed.onnx"), &model, &err) == 0, "%s", err.message);
    struct mq_tensor w;
    ck_assert_int_eq(mq_tensor_from_proto(model->proto->graph->initializer[0], "W", &w, &err), 0);
    ck_assert(((float *)w.data)[599] == 299.5f);
    mq_tensor_free(&w);
    mq_model_free(model);
}
END_TEST

/* ---- .pb files: the read from the fields around the data against protobuf-c's ------------ */

/* Protobuf wire bytes under construction. */
struct wire {
    uint8_t *b;
    size_t n;
};

static void put_varint(struct wire *w, uint64_t v)
{
    do {
        w->b[w->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
}

static void put_field(struct wire *w, unsigned field, unsigned wire_type)
{
    put_varint(w, (uint64_t)field << 3 | wire_type);
}

static void put_bytes(struct wire *w, unsigned field, const void *data, size_t len)
{
    put_field(w, field, 2);
    put_varint(w, len);
    if (len)
        memcpy(w->b + w->n, data, len);
    w->n += len;
}

static void put_dims(struct wire *w, int rank, const int64_t *dims)
{
    for (int i = 0; i < rank; i++) {
        put_field(w, 1, 0);
        put_varint(w, (uint64_t)dims[i]);
    }
}

static void put_type(struct wire *w, int dtype)
{
    put_field(w, 2, 0);
    put_varint(w, (uint64_t)dtype);
}

/* count float32 values 0.5, 1.5, ... as raw_data */
static void put_raw_floats(struct wire *w, int64_t count)
{
    float *v = malloc((size_t)(count ? count : 1) * sizeof *v);
    for (int64_t i = 0; i < count; i++)
        v[i] = (float)i + 0.5f;
    put_bytes(w, 9, v, (size_t)count * sizeof *v);
    free(v);
}

/* Reads file `name` both ways (and describes it): they must agree in every respect; returns
   whether the read succeeded. */
static int reads_agree(const char *name, struct wire *w)
{
    char *path = path_in_tmp(name);
    if (w) {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(w->b, 1, w->n, f), w->n);
        fclose(f);
    }
    struct mq_tensor a, b;
    struct mq_error ea, eb, ed;
    memset(&ea, 0, sizeof ea), memset(&eb, 0, sizeof eb), memset(&ed, 0, sizeof ed);
    char *na = NULL, *nb = NULL, *nd = NULL;
    struct mq_tensor_pb_info info;
    int ra = mq_tensor_read_pb(path, &a, &na, &ea);
    int rb = mq_tensor_read_pb_unpacked(path, &b, &nb, &eb);
    int rd = mq_tensor_describe_pb(path, &info, &nd, &ed);
    ck_assert_msg(ra == rb && rd == rb, "%s: read %d, unpacked %d, described %d", name, ra, rb,
                  rd);
    if (rb) {
        ck_assert_str_eq(ea.message, eb.message);
        ck_assert_str_eq(ed.message, eb.message);
        ck_assert_ptr_null(na);
        ck_assert_ptr_null(nd);
        return 0;
    }
    ck_assert_int_eq(a.dtype, b.dtype);
    ck_assert_int_eq(a.rank, b.rank);
    ck_assert_int_eq(a.count, b.count);
    ck_assert_int_eq(info.dtype, b.dtype);
    ck_assert_int_eq(info.rank, b.rank);
    for (int i = 0; i < b.rank; i++) {
        ck_assert_int_eq(a.dims[i], b.dims[i]);
        ck_assert_int_eq(info.dims[i], b.dims[i]);
    }
    size_t bytes = (size_t)b.count * mq_dtype_size(b.dtype);
    ck_assert(bytes == 0 || memcmp(a.data, b.data, bytes) == 0);
    ck_assert_int_eq(!na, !nb);
    ck_assert_int_eq(!nd, !nb);
    if (nb) {
        ck_assert_str_eq(na, nb);
        ck_assert_str_eq(nd, nb);
    }
    mq_tensor_free(&a);
    mq_tensor_free(&b);
    free(na);
    free(nb);
    free(nd);
    return 1;
}

START_TEST(pb_fast_read_matches_unpack)
{
    struct wire w = {malloc(1 << 21), 0};
    struct mq_error err;
    uint8_t filler[6000];
    memset(filler, 'a', sizeof filler);
    const int64_t d23[2] = {2, 3}, big[2] = {300, 500};

    /* the usual file: dims, data_type, name, raw_data */
    w.n = 0;
    put_dims(&w, 2, d23), put_type(&w, 1), put_bytes(&w, 8, "x:0", 3), put_raw_floats(&w, 6);
    ck_assert(reads_agree("usual.pb", &w));
    /* data well past the first bytes read, a doc_string after it; no name; a scalar */
    w.n = 0;
    put_dims(&w, 2, big), put_type(&w, 1), put_raw_floats(&w, 150000);
    put_bytes(&w, 12, "after", 5);
    ck_assert(reads_agree("big.pb", &w));
    w.n = 0;
    put_type(&w, 1), put_raw_floats(&w, 1);
    ck_assert(reads_agree("scalar.pb", &w));
    w.n = 0;
    put_dims(&w, 1, (const int64_t[]){0}), put_type(&w, 1), put_raw_floats(&w, 0);
    ck_assert(reads_agree("empty_tensor.pb", &w));
    /* fields in another order, an empty name, an int64 and an int4 tensor */
    w.n = 0;
    put_raw_floats(&w, 6), put_bytes(&w, 8, "", 0), put_type(&w, 1), put_dims(&w, 2, d23);
    ck_assert(reads_agree("reordered.pb", &w));
    w.n = 0;
    put_dims(&w, 1, (const int64_t[]){3}), put_type(&w, 7), put_bytes(&w, 9, filler, 24);
    ck_assert(reads_agree("int64.pb", &w));
    w.n = 0;
    put_dims(&w, 1, (const int64_t[]){3}), put_type(&w, 22), put_bytes(&w, 9, "\x21\x07", 2);
    ck_assert(reads_agree("int4.pb", &w));
    /* the ones read in full: a long name, a long doc_string after the data, a name that is not
       ASCII, packed dims, a second data_type, typed float_data */
    w.n = 0;
    put_dims(&w, 2, d23), put_type(&w, 1), put_bytes(&w, 8, filler, 5000), put_raw_floats(&w, 6);
    ck_assert(reads_agree("long_name.pb", &w));
    w.n = 0;
    put_dims(&w, 2, big), put_type(&w, 1), put_raw_floats(&w, 150000);
    put_bytes(&w, 12, filler, sizeof filler);
    ck_assert(reads_agree("long_tail.pb", &w));
    w.n = 0;
    put_dims(&w, 2, d23), put_type(&w, 1), put_bytes(&w, 8, "\xc3\xa9", 2), put_raw_floats(&w, 6);
    ck_assert(reads_agree("utf8_name.pb", &w));
    w.n = 0;
    put_bytes(&w, 1, "\x02\x03", 2), put_type(&w, 1), put_raw_floats(&w, 6);
    ck_assert(reads_agree("packed_dims.pb", &w));
    w.n = 0;
    put_dims(&w, 2, d23), put_type(&w, 7), put_type(&w, 1), put_raw_floats(&w, 6);
    ck_assert(reads_agree("two_types.pb", &w));
    w.n = 0;
    put_dims(&w, 1, (const int64_t[]){2}), put_type(&w, 1), put_bytes(&w, 4, filler, 8);
    ck_assert(reads_agree("float_data.pb", &w));

    /* refusals, with the same words both ways */
    w.n = 0;
    put_dims(&w, 2, d23), put_type(&w, 1), put_raw_floats(&w, 5);
    ck_assert(!reads_agree("short_data.pb", &w));
    w.n = 0;
    put_dims(&w, 2, d23), put_raw_floats(&w, 6);
    ck_assert(!reads_agree("no_type.pb", &w));
    w.n = 0;
    put_dims(&w, 1, (const int64_t[]){-6}), put_type(&w, 1), put_raw_floats(&w, 6);
    ck_assert(!reads_agree("negative_dim.pb", &w));
    w.n = 0;
    for (int i = 0; i < MQ_MAX_RANK + 1; i++)
        put_dims(&w, 1, (const int64_t[]){1});
    put_type(&w, 1), put_raw_floats(&w, 1);
    ck_assert(!reads_agree("rank13.pb", &w));
    w.n = 0;
    put_dims(&w, 2, big), put_type(&w, 1), put_raw_floats(&w, 150000);
    w.n -= 1000; /* cut inside the data */
    ck_assert(!reads_agree("cut.pb", &w));
    w.n = 0;
    put_dims(&w, 2, big), put_type(&w, 1), put_raw_floats(&w, 150000);
    w.b[w.n++] = 0xff; /* a stray byte after the data */
    ck_assert(!reads_agree("stray.pb", &w));
    w.n = 0;
    put_dims(&w, 2, d23), put_type(&w, 1), put_raw_floats(&w, 6), put_raw_floats(&w, 6);
    (void)reads_agree("two_data.pb", &w); /* whichever protobuf-c makes of it, both ways */
    w.n = 0;
    ck_assert(!reads_agree("empty.pb", &w));
    ck_assert(!reads_agree("missing.pb", NULL));

    /* describing allocates nothing for the data: under a cap the tensor passes, it still
       works, where reading the tensor is refused naming it */
    w.n = 0;
    put_dims(&w, 2, big), put_type(&w, 1), put_bytes(&w, 8, "wide", 4);
    put_raw_floats(&w, 150000);
    char *path = path_in_tmp("capped.pb");
    FILE *f = fopen(path, "wb");
    fwrite(w.b, 1, w.n, f);
    fclose(f);
    uint64_t cap = mq_memory_limit();
    mq_memory_set_limit(mq_memory_in_use() + 4096);
    struct mq_tensor_pb_info info;
    char *name = NULL;
    ck_assert_int_eq(mq_tensor_describe_pb(path, &info, &name, &err), 0);
    ck_assert_int_eq(info.rank, 2);
    ck_assert_int_eq(info.dims[1], 500);
    ck_assert_str_eq(name, "wide");
    free(name);
    struct mq_tensor t;
    ck_assert_int_ne(mq_tensor_read_pb(path, &t, NULL, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.message, "wide"));
    mq_memory_set_limit(cap);
    free(w.b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, loads_valid_model_and_keeps_zero_attribute);
    tcase_add_test(tc, rejects_missing_empty_png_random_truncated);
    tcase_add_test(tc, rejects_huge_claims_and_length_mismatch);
    tcase_add_test(tc, wire_check_bounds_nesting);
    tcase_add_test(tc, external_data_is_resolved_and_confined);
    tcase_add_test(tc, save_is_atomic_and_keeps_unknown_fields);
    tcase_add_test(tc, save_external_data_round_trips);
    tcase_add_test(tc, save_external_data_converts_typed_storage);
    tcase_add_test(tc, pb_fast_read_matches_unpack);
    return mq_check_run(s, tc);
}

/*
 * A small, strict JSON reader (RFC 8259) for files the tool wrote and users may have edited (see
 * json_read.h).
 */
#include "util/json_read.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"

struct parser {
    const char *text;
    size_t len;
    size_t pos;
    const char *label;
    struct mq_error *err;
};

static void value_free(struct mq_json_value *v);

/* Line and column (1-based, in bytes) of the current position, for messages. */
static int fail(struct parser *p, const char *what)
{
    size_t line = 1, column = 1;
    for (size_t i = 0; i < p->pos && i < p->len; i++) {
        if (p->text[i] == '\n') {
            line++;
            column = 1;
        } else {
            column++;
        }
    }
    return mq_error_set(p->err, "%s: line %zu, column %zu: %s", p->label, line, column, what);
}

static void skip_space(struct parser *p)
{
    while (p->pos < p->len) {
        char c = p->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static int peek(const struct parser *p) { return p->pos < p->len ? (unsigned char)p->text[p->pos] : -1; }

static int literal(struct parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->text + p->pos, word, n) != 0)
        return fail(p, "invalid literal (expected a value)");
    p->pos += n;
    return MQ_OK;
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int parse_number(struct parser *p, struct mq_json_value *v)
{
    size_t start = p->pos;
    if (peek(p) == '-')
        p->pos++;
    if (peek(p) == '0') {
        p->pos++;
    } else if (is_digit(peek(p))) {
        while (is_digit(peek(p)))
            p->pos++;
    } else {
        return fail(p, "invalid number");
    }
    if (peek(p) == '.') {
        p->pos++;
        if (!is_digit(peek(p)))
            return fail(p, "invalid number: digits must follow '.'");
        while (is_digit(peek(p)))
            p->pos++;
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-')
            p->pos++;
        if (!is_digit(peek(p)))
            return fail(p, "invalid number: digits must follow the exponent");
        while (is_digit(peek(p)))
            p->pos++;
    }
    v->type = MQ_JSON_NUMBER;
    v->u.number.text = p->text + start;
    v->u.number.len = p->pos - start;
    return MQ_OK;
}

static int hex4(struct parser *p, unsigned *out)
{
    if (p->len - p->pos < 4)
        return fail(p, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->text[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return fail(p, "invalid \\u escape");
    }
    *out = v;
    return MQ_OK;
}

static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when invalid. */
static size_t utf8_length(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned cp, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        len = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static int parse_string(struct parser *p, char **out, size_t *out_len)
{
    p->pos++; /* opening quote */
    /* The decoded text is never longer than the source text. */
    size_t end = p->pos;
    while (end < p->len && p->text[end] != '"') {
        if (p->text[end] == '\\')
            end++;
        end++;
    }
    if (end >= p->len)
        return fail(p, "unterminated string");
    char *buf = malloc(end - p->pos + 1);
    if (!buf)
        return mq_error_code(p->err, MQ_ERR_MEMORY, "%s: out of memory", p->label);
    size_t n = 0;
    while (p->text[p->pos] != '"') {
        unsigned char c = (unsigned char)p->text[p->pos];
        if (c < 0x20) {
            free(buf);
            return fail(p, "control character in a string (escape it)");
        }
        if (c != '\\') {
            size_t k = utf8_length((const unsigned char *)p->text + p->pos, p->len - p->pos);
            if (k == 0) {
                free(buf);
                return fail(p, "invalid UTF-8 in a string");
            }
            memcpy(buf + n, p->text + p->pos, k);
            n += k;
            p->pos += k;
            continue;
        }
        p->pos++;
        char e = p->text[p->pos++];
        unsigned cp;
        switch (e) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case '/': buf[n++] = '/'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u':
            if (hex4(p, &cp)) {
                free(buf);
                return MQ_ERR;
            }
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                free(buf);
                return fail(p, "unpaired low surrogate in a \\u escape");
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                unsigned lo;
                if (p->len - p->pos < 2 || p->text[p->pos] != '\\' ||
                    p->text[p->pos + 1] != 'u') {
                    free(buf);
                    return fail(p, "unpaired high surrogate in a \\u escape");
                }
                p->pos += 2;
                if (hex4(p, &lo)) {
                    free(buf);
                    return MQ_ERR;
                }
                if (lo < 0xdc00 || lo > 0xdfff) {
                    free(buf);
                    return fail(p, "unpaired high surrogate in a \\u escape");
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp == 0) {
                free(buf);
                return fail(p, "\\u0000 is not allowed in a string");
            }
            /* A \u escape takes 6 or 12 source bytes and gives at most 4: it fits. */
            n += put_utf8(buf + n, cp);
            break;
        default:
            free(buf);
            p->pos--;
            return fail(p, "invalid escape in a string");
        }
    }
    p->pos++; /* closing quote */
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return MQ_OK;
}

static int parse_value(struct parser *p, struct mq_json_value *v, int depth);

static int grow(void **items, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return MQ_OK;
    size_t c = *cap ? *cap * 2 : 8;
    void *bigger = realloc(*items, c * size);
    if (!bigger)
        return MQ_ERR;
    *items = bigger;
    *cap = c;
    return MQ_OK;
}

static int parse_array(struct parser *p, struct mq_json_value *v, int depth)
{
    p->pos++;
    v->type = MQ_JSON_ARRAY;
    v->u.array.items = NULL;
    v->u.array.n = 0;
    size_t cap = 0;
    skip_space(p);
    if (peek(p) == ']') {
        p->pos++;
        return MQ_OK;
    }
    for (;;) {
        if (grow((void **)&v->u.array.items, &cap, v->u.array.n, sizeof *v->u.array.items))
            return mq_error_code(p->err, MQ_ERR_MEMORY, "%s: out of memory", p->label);
        struct mq_json_value *item = &v->u.array.items[v->u.array.n];
        item->type = MQ_JSON_NULL;
        v->u.array.n++; /* counted before it is parsed, so a half-built item is freed */
        skip_space(p);
        if (parse_value(p, item, depth + 1))
            return MQ_ERR;
        skip_space(p);
        if (peek(p) == ',') {
            p->pos++;
            skip_space(p);
            if (peek(p) == ']')
                return fail(p, "trailing comma in an array");
            continue;
        }
        if (peek(p) == ']') {
            p->pos++;
            return MQ_OK;
        }
        return fail(p, "expected ',' or ']'");
    }
}

static int key_compare(const void *a, const void *b)
{
    return strcmp((*(const struct mq_json_member *const *)a)->key,
                  (*(const struct mq_json_member *const *)b)->key);
}

static int check_duplicate_keys(struct parser *p, const struct mq_json_value *v)
{
    size_t n = v->u.object.n;
    if (n < 2)
        return MQ_OK;
    const struct mq_json_member **sorted = malloc(n * sizeof *sorted);
    if (!sorted)
        return mq_error_code(p->err, MQ_ERR_MEMORY, "%s: out of memory", p->label);
    for (size_t i = 0; i < n; i++)
        sorted[i] = &v->u.object.members[i];
    qsort(sorted, n, sizeof *sorted, key_compare);
    for (size_t i = 1; i < n; i++)
        if (strcmp(sorted[i - 1]->key, sorted[i]->key) == 0) {
            char msg[200];
            snprintf(msg, sizeof msg, "key '%.120s' appears twice in one object", sorted[i]->key);
            free(sorted);
            return fail(p, msg);
        }
    free(sorted);
    return MQ_OK;
}

static int parse_object(struct parser *p, struct mq_json_value *v, int depth)
{
    p->pos++;
    v->type = MQ_JSON_OBJECT;
    v->u.object.members = NULL;
    v->u.object.n = 0;
    size_t cap = 0;
    skip_space(p);
    if (peek(p) == '}') {
        p->pos++;
        return MQ_OK;
    }
    for (;;) {
        skip_space(p);
        if (peek(p) != '"')
            return fail(p, "expected a string key");
        if (grow((void **)&v->u.object.members, &cap, v->u.object.n,
                 sizeof *v->u.object.members))
            return mq_error_code(p->err, MQ_ERR_MEMORY, "%s: out of memory", p->label);
        struct mq_json_member *m = &v->u.object.members[v->u.object.n];
        size_t key_len;
        m->value.type = MQ_JSON_NULL;
        if (parse_string(p, &m->key, &key_len))
            return MQ_ERR;
        v->u.object.n++; /* counted now so the key is freed on any later failure */
        skip_space(p);
        if (peek(p) != ':')
            return fail(p, "expected ':' after a key");
        p->pos++;
        skip_space(p);
        if (parse_value(p, &m->value, depth + 1))
            return MQ_ERR;
        skip_space(p);
        if (peek(p) == ',') {
            p->pos++;
            skip_space(p);
            if (peek(p) == '}')
                return fail(p, "trailing comma in an object");
            continue;
        }
        if (peek(p) == '}') {
            p->pos++;
            return check_duplicate_keys(p, v);
        }
        return fail(p, "expected ',' or '}'");
    }
}

static int parse_value(struct parser *p, struct mq_json_value *v, int depth)
{
    v->type = MQ_JSON_NULL;
    if (depth > MQ_JSON_MAX_DEPTH)
        return fail(p, "nested too deeply");
    switch (peek(p)) {
    case '{': return parse_object(p, v, depth);
    case '[': return parse_array(p, v, depth);
    case '"':
        v->type = MQ_JSON_STRING;
        v->u.string.chars = NULL;
        return parse_string(p, &v->u.string.chars, &v->u.string.len);
    case 't':
        v->type = MQ_JSON_BOOL;
        v->u.boolean = 1;
        return literal(p, "true");
    case 'f':
        v->type = MQ_JSON_BOOL;
        v->u.boolean = 0;
        return literal(p, "false");
    case 'n': return literal(p, "null");
    case -1: return fail(p, "unexpected end of input");
    default:
        if (peek(p) == '-' || is_digit(peek(p)))
            return parse_number(p, v);
        return fail(p, "expected a value");
    }
}

static void value_free(struct mq_json_value *v)
{
    switch (v->type) {
    case MQ_JSON_STRING: free(v->u.string.chars); break;
    case MQ_JSON_ARRAY:
        for (size_t i = 0; i < v->u.array.n; i++)
            value_free(&v->u.array.items[i]);
        free(v->u.array.items);
        break;
    case MQ_JSON_OBJECT:
        for (size_t i = 0; i < v->u.object.n; i++) {
            free(v->u.object.members[i].key);
            value_free(&v->u.object.members[i].value);
        }
        free(v->u.object.members);
        break;
    default: break;
    }
    v->type = MQ_JSON_NULL;
}

int mq_json_parse(const char *text, size_t len, const char *label, struct mq_json_doc *doc,
                  struct mq_error *err)
{
    memset(doc, 0, sizeof *doc);
    doc->text = malloc(len + 1);
    if (!doc->text)
        return mq_error_code(err, MQ_ERR_MEMORY, "%s: out of memory", label);
    if (len)
        memcpy(doc->text, text, len);
    doc->text[len] = '\0';
    doc->len = len;
    struct parser p = {doc->text, len, 0, label ? label : "JSON", err};
    if (len >= 3 && memcmp(doc->text, "\xef\xbb\xbf", 3) == 0)
        p.pos = 3; /* a byte order mark, as some editors add */
    skip_space(&p);
    int rc = parse_value(&p, &doc->root, 0);
    if (rc == MQ_OK) {
        skip_space(&p);
        if (p.pos != p.len)
            rc = fail(&p, "text after the JSON value");
    }
    if (rc)
        mq_json_doc_free(doc);
    return rc;
}

int mq_json_parse_file(const char *path, uint64_t max_bytes, struct mq_json_doc *doc,
                       struct mq_error *err)
{
    memset(doc, 0, sizeof *doc);
    uint8_t *data;
    size_t size;
    if (mq_file_read(path, max_bytes, &data, &size, err))
        return MQ_ERR;
    int rc = mq_json_parse((const char *)data, size, path, doc, err);
    free(data);
    return rc;
}

void mq_json_doc_free(struct mq_json_doc *doc)
{
    value_free(&doc->root);
    free(doc->text);
    memset(doc, 0, sizeof *doc);
}

const struct mq_json_value *mq_json_get(const struct mq_json_value *obj, const char *key)
{
    if (!obj || obj->type != MQ_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->u.object.n; i++)
        if (strcmp(obj->u.object.members[i].key, key) == 0)
            return &obj->u.object.members[i].value;
    return NULL;
}

static int is_integer_text(const struct mq_json_value *v)
{
    if (!v || v->type != MQ_JSON_NUMBER)
        return 0;
    for (size_t i = 0; i < v->u.number.len; i++) {
        char c = v->u.number.text[i];
        if (c == '.' || c == 'e' || c == 'E')
            return 0;
    }
    return 1;
}

int mq_json_to_uint64(const struct mq_json_value *v, uint64_t *out)
{
    if (!is_integer_text(v) || v->u.number.text[0] == '-')
        return MQ_ERR;
    uint64_t r = 0;
    for (size_t i = 0; i < v->u.number.len; i++) {
        unsigned d = (unsigned)(v->u.number.text[i] - '0');
        if (r > (UINT64_MAX - d) / 10)
            return MQ_ERR;
        r = r * 10 + d;
    }
    *out = r;
    return MQ_OK;
}

int mq_json_to_int64(const struct mq_json_value *v, int64_t *out)
{
    if (!is_integer_text(v))
        return MQ_ERR;
    int negative = v->u.number.text[0] == '-';
    uint64_t r = 0;
    for (size_t i = (size_t)negative; i < v->u.number.len; i++) {
        unsigned d = (unsigned)(v->u.number.text[i] - '0');
        if (r > ((uint64_t)INT64_MAX + 1 - d) / 10)
            return MQ_ERR;
        r = r * 10 + d;
    }
    if (!negative && r > (uint64_t)INT64_MAX)
        return MQ_ERR;
    *out = negative ? (int64_t)(0 - r) : (int64_t)r;
    return MQ_OK;
}

/*
 * The number's text is followed in the document by a character that cannot
 * continue a number (or the final NUL), so strtod stops exactly at its end.
 */
int mq_json_to_double(const struct mq_json_value *v, double *out)
{
    if (!v || v->type != MQ_JSON_NUMBER)
        return MQ_ERR;
    char *end;
    errno = 0;
    double d = strtod(v->u.number.text, &end);
    if (end != v->u.number.text + v->u.number.len || !isfinite(d))
        return MQ_ERR;
    *out = d;
    return MQ_OK;
}

int mq_json_to_float(const struct mq_json_value *v, float *out)
{
    if (!v || v->type != MQ_JSON_NUMBER)
        return MQ_ERR;
    char *end;
    errno = 0;
    float f = strtof(v->u.number.text, &end);
    if (end != v->u.number.text + v->u.number.len || !isfinite(f))
        return MQ_ERR;
    *out = f;
    return MQ_OK;
}

const char *mq_json_type_name(enum mq_json_type type)
{
    switch (type) {
    case MQ_JSON_NULL: return "null";
    case MQ_JSON_BOOL: return "a boolean";
    case MQ_JSON_NUMBER: return "a number";
    case MQ_JSON_STRING: return "a string";
    case MQ_JSON_ARRAY: return "an array";
    case MQ_JSON_OBJECT: return "an object";
    }
    return "a value";
}

/*
 * The HTML report's page: the template (html_page.html, embedded at build
 * time) with the report's JSON in its data block.  The JSON is escaped so
 * that no tensor name can end the <script> element early or inject markup:
 * '<', '>' and '&' (which JSON allows only inside strings) become \u003c,
 * \u003e and \u0026, which JSON.parse reads back as the same characters;
 * control characters are already escaped by the JSON writer.
 */
#include "report/html.h"

#include <stdlib.h>
#include <string.h>

#include "html_page.h" /* generated: static const char mq_html_page[] */
#include "util/fileio.h"

#define DATA_PLACEHOLDER "\n@MQ_DATA@\n"

/*
 * Length of the well-formed UTF-8 sequence at s (at most n bytes), 0 when
 * it is not one (stray continuation, overlong form, surrogate, past U+10FFFF).
 */
static size_t utf8_length(const unsigned char *s, size_t n)
{
    size_t len = 0;
    if (s[0] < 0x80)
        len = 1;
    else if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4;
    if (len == 0 || len > n)
        return 0;
    for (size_t k = 1; k < len; k++)
        if ((s[k] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return 0;
    return len;
}

/*
 * Copies JSON text to out, escaped for an HTML script element; bytes that
 * are not UTF-8 (a name in another encoding) become U+FFFD, so the page is
 * always valid UTF-8.
 */
static int write_escaped(FILE *out, const char *json, size_t size)
{
    const unsigned char *s = (const unsigned char *)json;
    for (size_t i = 0; i < size;) {
        const char *esc = NULL;
        switch (s[i]) {
        case '<': esc = "\\u003c"; break;
        case '>': esc = "\\u003e"; break;
        case '&': esc = "\\u0026"; break;
        default: break;
        }
        size_t len = esc ? 1 : utf8_length(s + i, size - i);
        if (len == 0) {
            esc = "\\ufffd";
            len = 1;
        }
        if (esc ? fputs(esc, out) == EOF : fwrite(s + i, 1, len, out) != len)
            return -1;
        i += len;
    }
    return 0;
}

int mq_html_write(FILE *out, const struct mq_html_report *r)
{
    const char *mark = strstr(mq_html_page, DATA_PLACEHOLDER);
    if (!mark)
        return -1; /* the template lost its placeholder: a build defect */
    char *json = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&json, &size);
    if (!mem)
        return -1;
    int rc = mq_html_write_data(mem, r);
    if (fclose(mem))
        rc = -1;
    size_t head = (size_t)(mark - mq_html_page) + 1; /* up to and with the newline */
    if (rc == 0 && fwrite(mq_html_page, 1, head, out) != head)
        rc = -1;
    if (rc == 0)
        rc = write_escaped(out, json, size);
    if (rc == 0 && fputs(mark + strlen(DATA_PLACEHOLDER) - 1, out) == EOF)
        rc = -1;
    free(json);
    return rc;
}

int mq_html_save(const char *path, const struct mq_html_report *r, struct mq_error *err)
{
    struct mq_atomic_file file;
    int rc = mq_atomic_open(&file, path, err);
    if (rc)
        return rc;
    if (mq_html_write(file.fp, r)) {
        mq_atomic_abort(&file);
        return mq_error_set(err, "writing '%s' failed", path);
    }
    return mq_atomic_commit(&file, err);
}

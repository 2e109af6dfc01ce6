/* Escaping control characters in text bound for the terminal. */
#include "util/text.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Appends one byte when there is room for it and the terminator. */
static void put(char *out, size_t size, size_t *n, char c)
{
    if (*n + 1 < size)
        out[*n] = c;
    (*n)++;
}

static void put_escape(char *out, size_t size, size_t *n, const char *prefix, unsigned value)
{
    static const char hex[] = "0123456789abcdef";
    for (const char *p = prefix; *p; p++)
        put(out, size, n, *p);
    put(out, size, n, hex[(value >> 4) & 15]);
    put(out, size, n, hex[value & 15]);
}

size_t mq_text_escape(const char *s, int keep_newlines, char *out, size_t size)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        if (c == '\t' || (c == '\n' && keep_newlines))
            put(out, size, &n, (char)c);
        else if (c < 0x20 || c == 0x7f)
            put_escape(out, size, &n, "\\x", c);
        else if (c == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            put_escape(out, size, &n, "\\u00", *++p);
        else
            put(out, size, &n, (char)c);
    }
    if (size)
        out[n < size ? n : size - 1] = '\0';
    return n;
}

int mq_text_write(FILE *f, const char *s, int keep_newlines)
{
    char small[1024];
    size_t need = mq_text_escape(s, keep_newlines, small, sizeof small);
    if (need < sizeof small)
        return fputs(small, f) < 0 ? -1 : 0;
    char *big = malloc(need + 1);
    if (!big) {
        /* No room to escape: drop the text rather than print it raw. */
        return fputs("(text not shown: out of memory)", f) < 0 ? -1 : 0;
    }
    mq_text_escape(s, keep_newlines, big, need + 1);
    int rc = fputs(big, f) < 0 ? -1 : 0;
    free(big);
    return rc;
}

int mq_text_printf(FILE *f, const char *fmt, ...)
{
    char small[1024];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (len < 0)
        return -1;
    if ((size_t)len < sizeof small)
        return mq_text_write(f, small, 1) ? -1 : len;
    char *big = malloc((size_t)len + 1);
    if (!big)
        return mq_text_write(f, small, 1) ? -1 : len;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)len + 1, fmt, ap);
    va_end(ap);
    int rc = mq_text_write(f, big, 1) ? -1 : len;
    free(big);
    return rc;
}

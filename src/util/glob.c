/* Shell-style patterns for node names and pattern lists (see glob.h). */
#include "util/glob.h"

#include <stddef.h>
#include <string.h>

#include "util/error.h"

/*
 * Parses the bracket expression starting just after '[' at p.  Returns the
 * position after the closing ']' and sets *matched for character c, or NULL
 * when the bracket is not closed.
 */
static const char *match_class(const char *p, unsigned char c, int *matched)
{
    int negate = 0, found = 0;
    if (*p == '!' || *p == '^') {
        negate = 1;
        p++;
    }
    const char *start = p;
    while (*p && (*p != ']' || p == start)) {
        unsigned char lo = (unsigned char)*p, hi;
        if (lo == '\\' && p[1])
            lo = (unsigned char)*++p;
        p++;
        hi = lo;
        if (*p == '-' && p[1] && p[1] != ']') {
            p++;
            hi = (unsigned char)*p;
            if (hi == '\\' && p[1])
                hi = (unsigned char)*++p;
            p++;
        }
        if (lo <= c && c <= hi)
            found = 1;
    }
    if (*p != ']')
        return NULL;
    *matched = found != negate;
    return p + 1;
}

/*
 * Iterative matcher with single-star backtracking: on a mismatch, retry from
 * the last '*' one character further.  Linear in practice, never exponential.
 */
int mq_glob_match(const char *pattern, const char *text)
{
    const char *p = pattern, *t = text;
    const char *star_p = NULL, *star_t = NULL;
    while (*t) {
        if (*p == '*') {
            while (*p == '*')
                p++;
            if (!*p)
                return 1;
            star_p = p;
            star_t = t;
            continue;
        }
        int ok = 0;
        const char *next = NULL;
        if (*p == '?') {
            ok = 1;
            next = p + 1;
        } else if (*p == '[') {
            next = match_class(p + 1, (unsigned char)*t, &ok);
            if (!next)
                return 0;
        } else if (*p == '\\' && p[1]) {
            ok = p[1] == *t;
            next = p + 2;
        } else if (*p) {
            ok = *p == *t;
            next = p + 1;
        }
        if (ok) {
            p = next;
            t++;
        } else if (star_p) {
            p = star_p;
            t = ++star_t;
        } else {
            return 0;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

int mq_glob_has_magic(const char *pattern)
{
    return strpbrk(pattern, "*?[\\") != NULL;
}

int mq_glob_check(const char *pattern, struct mq_error *err)
{
    for (const char *p = pattern; *p; p++) {
        if (*p == '\\') {
            if (!p[1])
                return mq_error_set(err, "pattern '%s' ends with a lone '\\'", pattern);
            p++;
        } else if (*p == '[') {
            int dummy;
            const char *end = match_class(p + 1, 0, &dummy);
            if (!end)
                return mq_error_set(err, "pattern '%s' has a '[' without its ']'", pattern);
            p = end - 1;
        }
    }
    return MQ_OK;
}

/*
 * String helpers every module uses: formatting into a new string and
 * replacing an owned string in place.
 */
#ifndef MQ_STRUTIL_H
#define MQ_STRUTIL_H

#include <stdarg.h>

/* A malloc'd printf result, NULL when out of memory. */
char *mq_str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *mq_str_vprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Replaces *slot (malloc'd or NULL) with a copy of value: 0, or -1 when out of memory
   (*slot is then unchanged). */
int mq_str_replace(char **slot, const char *value);

/* Whether s is one of the strings of a NULL-terminated list. */
int mq_str_in_list(const char *const *list, const char *s);

#endif

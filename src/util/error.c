/* Errors that travel up as return codes, gathering context on the way (see error.h). */
#include "util/error.h"

#include <stdio.h>
#include <string.h>

static void set_message(struct mq_error *err, const char *fmt, va_list ap)
{
    vsnprintf(err->message, sizeof err->message, fmt, ap);
}

int mq_error_set(struct mq_error *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        set_message(err, fmt, ap);
        va_end(ap);
    }
    return MQ_ERR;
}

int mq_error_code(struct mq_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        set_message(err, fmt, ap);
        va_end(ap);
    }
    return code;
}

void mq_error_prefix(struct mq_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[MQ_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    /* Shift the existing message right and put the prefix in front, truncating the tail. */
    size_t plen = strlen(prefix);
    size_t mlen = strlen(err->message);
    if (plen >= sizeof err->message)
        plen = sizeof err->message - 1;
    if (plen + mlen >= sizeof err->message)
        mlen = sizeof err->message - 1 - plen;
    memmove(err->message + plen, err->message, mlen);
    memcpy(err->message, prefix, plen);
    err->message[plen + mlen] = '\0';
}

void mq_error_clear(struct mq_error *err)
{
    if (err)
        err->message[0] = '\0';
}

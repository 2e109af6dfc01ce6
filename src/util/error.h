/* Errors that travel up as return codes, gathering context on the way. */
#ifndef MQ_ERROR_H
#define MQ_ERROR_H

#include <stdarg.h>

#define MQ_ERROR_MESSAGE_MAX 1024

/* Return codes: 0 is success, every failure is negative. */
enum {
    MQ_OK = 0,
    MQ_ERR = -1,        /* bad input or an operation that failed: exit status 1 */
    MQ_ERR_USAGE = -2,  /* the command line itself is wrong: exit status 2 */
    MQ_ERR_MEMORY = -3, /* the memory cap or the allocator refused */
    MQ_ERR_INTERRUPTED = -4,
};

struct mq_error {
    char message[MQ_ERROR_MESSAGE_MAX];
};

/* Replaces the message; returns MQ_ERR so callers can `return mq_error_set(...)`. */
int mq_error_set(struct mq_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Same, returning the given code. */
int mq_error_code(struct mq_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends context: "node 'conv1' (Conv): " + existing message. */
void mq_error_prefix(struct mq_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mq_error_clear(struct mq_error *err);

/* Returns s, or "" when s is NULL (protobuf-c leaves absent strings NULL). */
static inline const char *mq_str(const char *s) { return s ? s : ""; }

#endif

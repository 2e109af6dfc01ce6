/*
 * Text for the terminal.  Names and paths read from a model or a sample file
 * may hold control characters; printed raw, an ESC sequence in a node name
 * could retitle or clear the user's terminal through an error message.  Every
 * text line the program prints goes through these functions (JSON output
 * escapes on its own).
 */
#ifndef MQ_UTIL_TEXT_H
#define MQ_UTIL_TEXT_H

#include <stddef.h>
#include <stdio.h>

/*
 * Copies s into out (size > 0; always terminated, cut short when it does not
 * fit), writing each control character as an escape: C0 controls and DEL as
 * \xNN (except \t, and \n when keep_newlines is set: a multi-line text keeps
 * its lines), and the C1 controls U+0080..U+009F (UTF-8 C2 80..C2 9F) as \u00NN.  Other
 * bytes, UTF-8 included, are copied.  Returns the length it needed (as
 * snprintf does).
 */
size_t mq_text_escape(const char *s, int keep_newlines, char *out, size_t size);

/* Writes s to f escaped as mq_text_escape does; returns 0, or -1 when the write fails. */
int mq_text_write(FILE *f, const char *s, int keep_newlines);

/* fprintf for text lines: formats, then writes the result escaped, keeping \n and \t;
   returns the formatted length (before escaping), or -1. */
int mq_text_printf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

/* Byte sizes on the command line (--max-memory). */
#ifndef MQ_CLI_BYTE_SIZE_H
#define MQ_CLI_BYTE_SIZE_H

#include <stdint.h>

/*
 * Parses a byte count: plain digits ("1048576") or digits with a binary unit,
 * K, M, G or T (powers of 1024, either case, optionally followed by "B" or
 * "iB": "512M", "4G", "1024K", "2GiB").  No sign, spaces, fractions or
 * overflow.  Returns 0 and sets *bytes, or -1 leaving *bytes untouched.
 */
int mq_cli_parse_byte_size(const char *s, uint64_t *bytes);

#endif

/* Parsing byte sizes given on the command line: --max-memory 512M, 4G, 2GiB. */
#include <ctype.h>
#include <string.h>

#include "cli/byte_size.h"

int mq_cli_parse_byte_size(const char *s, uint64_t *bytes)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    uint64_t value = 0;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned digit = (unsigned)(*s - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return -1;
        value = value * 10 + digit;
    }
    int shift = 0;
    if (*s) {
        const char *units = "KMGT";
        const char *u = strchr(units, toupper((unsigned char)*s));
        if (!u)
            return -1;
        shift = 10 * (int)(u - units + 1);
        s++;
        /* "4G", "4GB" and "4GiB" all mean 4 * 2^30: nobody sizes a memory cap in powers of 1000. */
        if (strcmp(s, "iB") == 0 || strcmp(s, "ib") == 0)
            s += 2;
        else if (*s == 'B' || *s == 'b')
            s++;
        if (*s)
            return -1;
        if (value > UINT64_MAX >> shift)
            return -1;
    }
    *bytes = value << shift;
    return 0;
}

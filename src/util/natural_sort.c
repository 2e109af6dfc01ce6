/* Natural order for file names: digit runs compare as numbers (see natural_sort.h). */
#include "util/natural_sort.h"

#include <ctype.h>
#include <string.h>

int mq_natural_compare(const char *a, const char *b)
{
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            /* Compare digit runs by value: skip leading zeros, then by length, then digits. */
            while (*a == '0')
                a++;
            while (*b == '0')
                b++;
            size_t la = 0, lb = 0;
            while (isdigit((unsigned char)a[la]))
                la++;
            while (isdigit((unsigned char)b[lb]))
                lb++;
            if (la != lb)
                return la < lb ? -1 : 1;
            int c = strncmp(a, b, la);
            if (c)
                return c;
            a += la;
            b += lb;
            continue;
        }
        if (*a != *b)
            return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        a++;
        b++;
    }
    return *a ? 1 : *b ? -1 : 0;
}

int mq_natural_compare_ptr(const void *a, const void *b)
{
    return mq_natural_compare(*(const char *const *)a, *(const char *const *)b);
}

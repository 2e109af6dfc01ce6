/* Natural order for file names: "set_2" before "set_10". */
#ifndef MQ_NATURAL_SORT_H
#define MQ_NATURAL_SORT_H

int mq_natural_compare(const char *a, const char *b);
/* qsort comparator over an array of char *. */
int mq_natural_compare_ptr(const void *a, const void *b);

#endif

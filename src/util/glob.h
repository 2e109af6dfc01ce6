/*
 * Shell-style patterns for node names: --exclude-nodes 'head*' skips every
 * node whose name starts with "head".
 *
 *   *      any run of characters, '/' included (node names are not paths)
 *   ?      any one character
 *   [abc]  one of the listed characters; [a-z] a range; [!a-z] or [^a-z] negated;
 *          a ']' right after '[' (or after '!'/'^') is literal
 *   \c     the character c itself
 *
 * Matching is by bytes, case-sensitive, and whole-string.
 */
#ifndef MQ_GLOB_H
#define MQ_GLOB_H

/* 1 when `text` matches `pattern`, 0 otherwise (also for a malformed pattern). */
int mq_glob_match(const char *pattern, const char *text);
/* 1 when the pattern uses any of * ? [ \ (so it is more than an exact name). */
int mq_glob_has_magic(const char *pattern);
/*
 * 0 for a well-formed pattern; otherwise MQ_ERR with a message naming the
 * problem (an unclosed '[', a trailing '\').
 */
struct mq_error;
int mq_glob_check(const char *pattern, struct mq_error *err);

#endif

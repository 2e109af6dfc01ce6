/*
 * The one topological sort (Kahn's algorithm) of the project: the interpreter's
 * planner and the graph rewrites both order nodes with it, so they agree on the
 * order of any graph.
 */
#ifndef MQ_UTIL_TOPOSORT_H
#define MQ_UTIL_TOPOSORT_H

/*
 * Orders nodes 0..n-1, where node i depends on deps[i][0..n_deps[i]) (repeats
 * allowed), always taking the earliest ready node: a graph already in order
 * keeps it.  Writes the order to order[] and returns how many nodes it placed:
 * fewer than n when there is a cycle, and then left[i] (n entries, may be NULL)
 * is non-zero for the nodes not placed.  -1 when out of memory.
 */
int mq_toposort(int n, int *const *deps, const int *n_deps, int *order, int *left);

#endif

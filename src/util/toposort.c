/* Kahn's algorithm with a min-heap of ready nodes (see toposort.h). */
#include "util/toposort.h"

#include <stdlib.h>

/* Min-heap of node indices: the earliest ready node goes first. */
struct heap {
    int *v;
    int n;
};

static void heap_push(struct heap *h, int x)
{
    int i = h->n++;
    h->v[i] = x;
    while (i > 0 && h->v[(i - 1) / 2] > h->v[i]) {
        int p = (i - 1) / 2, t = h->v[p];
        h->v[p] = h->v[i];
        h->v[i] = t;
        i = p;
    }
}

static int heap_pop(struct heap *h)
{
    int top = h->v[0];
    h->v[0] = h->v[--h->n];
    for (int i = 0;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && h->v[l] < h->v[m])
            m = l;
        if (r < h->n && h->v[r] < h->v[m])
            m = r;
        if (m == i)
            break;
        int t = h->v[m];
        h->v[m] = h->v[i];
        h->v[i] = t;
        i = m;
    }
    return top;
}

int mq_toposort(int n, int *const *deps, const int *n_deps, int *order, int *left)
{
    size_t n_edges = 0;
    for (int i = 0; i < n; i++)
        n_edges += (size_t)n_deps[i];
    int *start = calloc((size_t)n + 2, sizeof *start);   /* users of p: start[p]..start[p+1] */
    int *users = malloc((n_edges ? n_edges : 1) * sizeof *users);
    int *indegree = calloc((size_t)n + 1, sizeof *indegree);
    struct heap ready = {malloc(((size_t)n + 1) * sizeof(int)), 0};
    int placed = -1;
    if (!start || !users || !indegree || !ready.v)
        goto done;
    for (int i = 0; i < n; i++)
        for (int d = 0; d < n_deps[i]; d++)
            start[deps[i][d] + 2]++;
    for (int p = 0; p < n; p++)
        start[p + 2] += start[p + 1];
    for (int i = 0; i < n; i++) {
        indegree[i] = n_deps[i];
        for (int d = 0; d < n_deps[i]; d++)
            users[start[deps[i][d] + 1]++] = i;
    }
    for (int i = 0; i < n; i++)
        if (indegree[i] == 0)
            heap_push(&ready, i);
    placed = 0;
    while (ready.n) {
        int p = heap_pop(&ready);
        order[placed++] = p;
        for (int u = start[p]; u < start[p + 1]; u++)
            if (--indegree[users[u]] == 0)
                heap_push(&ready, users[u]);
    }
    if (left)
        for (int i = 0; i < n; i++)
            left[i] = indegree[i];
done:
    free(start);
    free(users);
    free(indegree);
    free(ready.v);
    return placed;
}

/*
 * Runs ONNX backend test cases through the interpreter and classifies each:
 * pass, fail (wrong numbers or an error, with the worst element), unsupported
 * (an op or type the interpreter does not implement, named) or excluded.
 *
 * Every case runs in a forked child with a time limit, so one crashing or
 * hanging kernel is reported as a failure of that case instead of ending the
 * whole run.  Output: one line per case, "folder/case<TAB>status<TAB>detail".
 *
 * Usage: conformance [--excluded FILE] [--only FILE] [--jobs N] ROOT FOLDER...
 *   ROOT     e.g. /usr/share/libonnx-testdata/data
 *   FOLDER   node, pytorch-converted, pytorch-operator, simple
 *   --only   run just the cases listed (one "folder/case" per line)
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "interp/tolerance.h"
#include "interp/plan.h"
#include "model/model.h"
#include "model/tensor_proto.h"
#include "util/fileio.h"
#include "util/natural_sort.h"

#define CASE_TIME_LIMIT_S 120
#define DETAIL_MAX 1400

struct list {
    char **items;
    int n, cap;
};

static void list_add(struct list *l, const char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->items = realloc(l->items, (size_t)l->cap * sizeof *l->items);
        if (!l->items) {
            perror("conformance");
            exit(2);
        }
    }
    l->items[l->n++] = strdup(s);
}

static int list_has(const struct list *l, const char *s)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->items[i], s) == 0)
            return 1;
    return 0;
}

static const char *list_find_prefixed(const struct list *l, const char *key)
{
    size_t n = strlen(key);
    for (int i = 0; i < l->n; i++)
        if (strncmp(l->items[i], key, n) == 0 && l->items[i][n] == '\t')
            return l->items[i] + n + 1;
    return NULL;
}

/* Lines of a file, without comments ('#') and blank lines. */
static void read_lines(const char *path, struct list *out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "conformance: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] && line[0] != '#')
            list_add(out, line);
    }
    fclose(f);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void list_dir(const char *dir, const char *prefix, struct list *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            list_add(out, e->d_name);
    closedir(d);
    if (out->n)
        qsort(out->items, (size_t)out->n, sizeof *out->items, mq_natural_compare_ptr);
}

static int is_unsupported_message(const char *m)
{
    return strstr(m, "is not supported") || strstr(m, "not supported by the interpreter") ||
           strstr(m, "unsupported");
}

/* Runs one case; writes "status\tdetail" into result. Called in the child. */
static void run_case(const char *case_dir, char *result, size_t size)
{
    struct mq_error err = {{0}};
    char *model_path = mq_path_join(case_dir, "model.onnx");
    struct mq_model *model = NULL;
    struct mq_plan *plan = NULL;
    struct list sets = {0};
    if (mq_model_load(model_path, &model, &err)) {
        snprintf(result, size, "%s\t%s", is_unsupported_message(err.message) ? "unsupported"
                                                                             : "fail", err.message);
        return;
    }
    if (mq_plan_build(model, &plan, &err)) {
        snprintf(result, size, "%s\t%s", is_unsupported_message(err.message) ? "unsupported"
                                                                             : "fail", err.message);
        return;
    }
    list_dir(case_dir, "test_data_set_", &sets);
    if (sets.n == 0) {
        snprintf(result, size, "fail\tno test_data_set folders");
        return;
    }
    int n_in = mq_plan_input_count(plan), n_out = mq_plan_output_count(plan);
    for (int s = 0; s < sets.n; s++) {
        char *set_dir = mq_path_join(case_dir, sets.items[s]);
        struct mq_tensor *inputs = calloc((size_t)n_in + 1, sizeof *inputs);
        struct mq_tensor *outputs = calloc((size_t)n_out + 1, sizeof *outputs);
        for (int i = 0; i < n_in; i++) {
            char file[64];
            snprintf(file, sizeof file, "input_%d.pb", i);
            char *path = mq_path_join(set_dir, file);
            if (mq_tensor_read_pb(path, &inputs[i], NULL, &err)) {
                snprintf(result, size, "%s\t%s", is_unsupported_message(err.message)
                         ? "unsupported" : "fail", err.message);
                return;
            }
            free(path);
            mq_tensor_adopt_declared_bfloat16(&inputs[i],
                                              mq_value_info_dtype(mq_plan_input(plan, i)));
        }
        if (mq_plan_run(plan, inputs, n_in, outputs, n_out, NULL, &err)) {
            snprintf(result, size, "%s\t%s: %s", is_unsupported_message(err.message)
                     ? "unsupported" : "fail", sets.items[s], err.message);
            return;
        }
        for (int o = 0; o < n_out; o++) {
            char file[64];
            snprintf(file, sizeof file, "output_%d.pb", o);
            char *path = mq_path_join(set_dir, file);
            struct mq_tensor expected;
            if (mq_tensor_read_pb(path, &expected, NULL, &err)) {
                snprintf(result, size, "%s\texpected output: %s",
                         is_unsupported_message(err.message) ? "unsupported" : "fail",
                         err.message);
                return;
            }
            free(path);
            mq_tensor_adopt_declared_bfloat16(&expected, outputs[o].dtype);
            struct mq_compare_result r;
            mq_tensor_compare(&outputs[o], &expected, MQ_COMPARE_RTOL, MQ_COMPARE_ATOL, &r);
            if (!r.match) {
                snprintf(result, size, "fail\t%s output %d ('%s'): %s", sets.items[s], o,
                         mq_str(mq_plan_output(plan, o)->name), r.reason);
                return;
            }
        }
    }
    snprintf(result, size, "pass\t%d data sets", sets.n);
}

struct child {
    pid_t pid;
    int fd;
    char name[512];
};

static void finish(struct child *c)
{
    char buf[DETAIL_MAX + 64];
    ssize_t got = 0, r;
    while (got < (ssize_t)sizeof buf - 1 &&
           (r = read(c->fd, buf + got, sizeof buf - 1 - (size_t)got)) > 0)
        got += r;
    buf[got > 0 ? got : 0] = '\0';
    close(c->fd);
    int status = 0;
    waitpid(c->pid, &status, 0);
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        printf("%s\tfail\t%s\n", c->name, sig == SIGALRM ? "timed out" : strsignal(sig));
    } else if (got == 0) {
        printf("%s\tfail\tno result (exit status %d)\n", c->name, WEXITSTATUS(status));
    } else {
        for (char *p = buf; *p; p++)
            if (*p == '\n')
                *p = ' ';
        printf("%s\t%s\n", c->name, buf);
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *excluded_path = NULL, *only_path = NULL;
    int jobs = 2;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--excluded") == 0 && i + 1 < argc)
            excluded_path = argv[++i];
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only_path = argv[++i];
        else if (strcmp(argv[i], "--jobs") == 0 && i + 1 < argc)
            jobs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: conformance [--excluded FILE] [--only FILE] [--jobs N] ROOT "
                            "FOLDER...\n");
            return 2;
        }
    }
    if (argc - i < 2) {
        fprintf(stderr, "usage: conformance [--excluded FILE] [--only FILE] [--jobs N] ROOT "
                        "FOLDER...\n");
        return 2;
    }
    if (jobs < 1)
        jobs = 1;
    const char *root = argv[i++];
    struct list excluded = {0}, only = {0};
    if (excluded_path)
        read_lines(excluded_path, &excluded);
    if (only_path)
        read_lines(only_path, &only);

    struct child *running = calloc((size_t)jobs, sizeof *running);
    int n_running = 0;
    for (; i < argc; i++) {
        char *folder = mq_path_join(root, argv[i]);
        struct list cases = {0};
        list_dir(folder, "test_", &cases);
        for (int c = 0; c < cases.n; c++) {
            char name[512];
            snprintf(name, sizeof name, "%s/%s", argv[i], cases.items[c]);
            if (only_path && !list_has(&only, name))
                continue;
            char *case_dir = mq_path_join(folder, cases.items[c]);
            const char *reason = list_find_prefixed(&excluded, cases.items[c]);
            if (reason) {
                printf("%s\texcluded\t%s\n", name, reason);
                free(case_dir);
                continue;
            }
            char *model_path = mq_path_join(case_dir, "model.onnx");
            struct stat st;
            if (!is_dir(case_dir) || stat(model_path, &st) != 0) {
                printf("%s\texcluded\tno model.onnx (the case needs a download)\n", name);
                free(case_dir);
                free(model_path);
                continue;
            }
            free(model_path);
            if (n_running == jobs) {
                finish(&running[0]);
                memmove(running, running + 1, sizeof *running * (size_t)(jobs - 1));
                n_running--;
            }
            int fds[2];
            if (pipe(fds) != 0) {
                perror("pipe");
                return 2;
            }
            fflush(stdout);
            pid_t pid = fork();
            if (pid < 0) {
                perror("fork");
                return 2;
            }
            if (pid == 0) {
                close(fds[0]);
                alarm(CASE_TIME_LIMIT_S);
                char result[DETAIL_MAX];
                run_case(case_dir, result, sizeof result);
                ssize_t w = write(fds[1], result, strlen(result));
                (void)w;
                _exit(0);
            }
            close(fds[1]);
            running[n_running].pid = pid;
            running[n_running].fd = fds[0];
            snprintf(running[n_running].name, sizeof running[n_running].name, "%s", name);
            n_running++;
            free(case_dir);
        }
        free(folder);
    }
    for (int k = 0; k < n_running; k++)
        finish(&running[k]);
    return 0;
}

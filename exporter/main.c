/* SPDX-License-Identifier: Apache-2.0 */
/* promlet entry point: flags, config, store, HTTP, signals; check/test subcommands. */
#include "agent.h"
#include "alerts_api.h"
#include "collector.h"
#include "config.h"
#include "defaults.h"
#include "engine.h"
#include "expose.h"
#include "federate.h"
#include "flags.h"
#include "http.h"
#include "log.h"
#include "push.h"
#include "rwrecv.h"
#include "query.h"
#include "store.h"
#include "version.h"
#include "webcfg.h"

#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- modules -----------------------------------------------------------------------------------
 */

/* Subsystems in start order (see struct agent_module in agent.h); one line each. */
static const struct agent_module *const modules[] = {
    &mod_push,       &mod_rwrecv, &mod_federate, &mod_engine,
    &mod_alerts_api, &mod_query,  NULL, /* keeps the table non-empty; skipped */
};
#define NMODULES (sizeof(modules) / sizeof(modules[0]))

/* Runs every module's prepare for nc; on success commits all (a != NULL), else aborts the
 * prepared ones. With a == NULL only validates. */
static int modules_load(struct agent *a, const struct config *nc, struct perr *err) {
    void *staged[NMODULES] = {0};
    size_t i = 0;
    int rc = 0;
    for (; i < NMODULES && !rc; i++)
        if (modules[i] && modules[i]->prepare) rc = modules[i]->prepare(a, nc, &staged[i], err);
    if (rc || !a) {
        for (size_t k = 0; k < i; k++)
            if (modules[k] && modules[k]->abort && staged[k]) modules[k]->abort(staged[k]);
        return rc;
    }
    for (size_t k = 0; k < NMODULES; k++)
        if (modules[k] && modules[k]->commit) modules[k]->commit(a, staged[k]);
    return 0;
}

/* ---- rule files named by a config -------------------------------------------------------------
 */

static int count_file(void *arg, const char *path) {
    (void)path;
    (*(size_t *)arg)++;
    return 0;
}

/* ---- reload
 * ---------------------------------------------------------------------------------------- */

static void format_err(char *where, size_t len, const char *file, const struct perr *e) {
    if (e->line)
        snprintf(where, len, "%s:%d:%d: %s", file, e->line, e->col, e->msg);
    else
        snprintf(where, len, "%s: %s", file, e->msg);
}

static void store_opts_from(const struct config *c, struct store_opts *o) {
    o->retention_ms = c->retention_ms;
    o->max_series = c->max_series;
    o->future_ms = c->future_tolerance_ms;
}

int agent_reload(struct agent *a, struct perr *err, char *where, size_t wherelen) {
    struct config *nc = NULL;
    int rc = config_load(a->flags->config_file, &nc, err);
    if (!rc) {
        size_t n = 0;
        rc = config_rule_files(nc, count_file, &n, err);
    }
    /* Modules prepare outside the lock (rule files are read and parsed here). */
    void *staged[NMODULES] = {0};
    size_t prepared = 0;
    for (; !rc && prepared < NMODULES; prepared++)
        if (modules[prepared] && modules[prepared]->prepare)
            rc = modules[prepared]->prepare(a, nc, &staged[prepared], err);
    pthread_mutex_lock(&a->cfg_lock);
    a->reloads_total++;
    if (rc) {
        for (size_t k = 0; k < prepared; k++)
            if (modules[k] && modules[k]->abort && staged[k]) modules[k]->abort(staged[k]);
        a->reload_failures_total++;
        a->last_reload_ok = false;
        pthread_mutex_unlock(&a->cfg_lock);
        format_err(where, wherelen, a->flags->config_file, err);
        config_free(nc);
        return rc;
    }
    struct config *old = a->cfg;
    a->cfg = nc;
    a->last_reload_ok = true;
    a->last_reload_success = (double)agent_now_ms() / 1000.0;
    struct store_opts so;
    store_opts_from(nc, &so);
    store_set_opts(a->store, &so);
    for (size_t k = 0; k < NMODULES; k++)
        if (modules[k] && modules[k]->commit) modules[k]->commit(a, staged[k]);
    pthread_mutex_unlock(&a->cfg_lock);
    config_free(old);
    return 0;
}

/* ---- handlers
 * -------------------------------------------------------------------------------------- */

static void h_healthy(void *arg, const struct http_req *req, struct http_resp *resp) {
    (void)arg;
    (void)req;
    sbuf_adds(&resp->body, "promlet is Healthy.\n");
}

static void h_ready(void *arg, const struct http_req *req, struct http_resp *resp) {
    struct agent *a = arg;
    (void)req;
    if (!__atomic_load_n(&a->ready, __ATOMIC_ACQUIRE)) {
        http_error(resp, 503, "Service Unavailable");
        return;
    }
    sbuf_adds(&resp->body, "promlet is Ready.\n");
}

static void h_reload(void *arg, const struct http_req *req, struct http_resp *resp) {
    struct agent *a = arg;
    (void)req;
    if (!a->flags->web_enable_lifecycle) {
        http_error(resp, 403, "Lifecycle API is not enabled.");
        return;
    }
    struct perr err = {0};
    char where[512];
    if (agent_reload(a, &err, where, sizeof(where))) {
        LOG_ERROR("Error reloading config: %s", where);
        http_error(resp, 500, "failed to reload config: %s", where);
        return;
    }
    LOG_INFO("Completed loading of configuration file: %s", a->flags->config_file);
}

static void h_metrics(void *arg, const struct http_req *req, struct http_resp *resp) {
    struct agent *a = arg;
    (void)req;
    struct mset *m = mset_new();
    if (!m) {
        http_error(resp, 503, "out of memory");
        return;
    }
    int rc = selfmon_write(a, m);
    if (!rc) rc = http_write_metrics(a->http, m);
    if (!rc && a->collectors) rc = collectors_scrape(a->collectors, m);
    for (size_t i = 0; i < NMODULES && !rc; i++)
        if (modules[i] && modules[i]->metrics) rc = modules[i]->metrics(a, m);
    if (!rc) rc = mset_write_text(m, &resp->body);
    mset_free(m);
    if (rc) {
        http_error(resp, 503, "building /metrics failed: %s", strerror(-rc));
        return;
    }
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp->gzip_ok = true;
}

static int register_routes(struct agent *a) {
    const struct http_route routes[] = {
        {"/-/healthy", false, HTTP_GET, "/-/healthy", h_healthy, a, 0},
        {"/-/ready", false, HTTP_GET, "/-/ready", h_ready, a, 0},
        {"/-/reload", false, HTTP_POST | HTTP_PUT, "/-/reload", h_reload, a, 0},
        {"/metrics", false, HTTP_GET, "/metrics", h_metrics, a, 0},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (http_route(a->http, &routes[i])) return -E2BIG;
    return 0;
}

/* ---- subcommands
 * ----------------------------------------------------------------------------------- */

static int cmd_check_config(const struct flags *f) {
    int status = 0;
    for (size_t i = 0; i < f->nargs; i++) {
        const char *file = f->args[i];
        printf("Checking %s\n", file);
        struct config *c = NULL;
        struct perr err = {0};
        int rc = config_load(file, &c, &err);
        size_t n = 0;
        if (!rc) rc = config_rule_files(c, count_file, &n, &err);
        if (!rc) rc = modules_load(NULL, c, &err);
        if (rc) {
            char where[512];
            format_err(where, sizeof(where), file, &err);
            printf("  FAILED: %s\n\n", where);
            status = 1;
        } else {
            printf("  SUCCESS: %zu rule files found\n", n);
            printf(" SUCCESS: %s is valid promlet config file syntax\n\n", file);
        }
        config_free(c);
    }
    return status;
}

/* `promtool check rules`: every file is checked and reported; status 1 if any failed. */
static int cmd_check_rules(const struct flags *f) {
    int status = 0;
    struct rulefile_opts o = {.ignore_unknown_fields = f->ignore_unknown_fields,
                              .legacy_names = f->promql_compat_v2,
                              .compat_v2 = f->promql_compat_v2};
    for (size_t i = 0; i < f->nargs; i++) {
        const char *file = f->args[i];
        FILE *fp = fopen(file, "rb");
        struct sbuf b;
        sbuf_init(&b);
        char tmp[65536];
        size_t n;
        while (fp && (n = fread(tmp, 1, sizeof(tmp), fp)) > 0)
            sbuf_add(&b, tmp, n);
        if (!fp) {
            printf("Checking %s\n  FAILED:\n%s: %s\n\n", file, file, strerror(errno));
            status = 1;
            sbuf_fini(&b);
            continue;
        }
        fclose(fp);
        bool failed = false;
        char *out = rulefile_check(file, b.data ? b.data : "", b.len, &o, &failed);
        sbuf_fini(&b);
        if (!out) {
            fprintf(stderr, "promlet: error: out of memory\n");
            return 1;
        }
        fputs(out, failed ? stderr : stdout);
        free(out);
        if (failed) status = 1;
    }
    return status;
}

static int test_read(void *arg, const char *path, char **buf, size_t *len) {
    (void)arg;
    FILE *fp = fopen(path, "rb");
    if (!fp) return -errno;
    struct sbuf b;
    sbuf_init(&b);
    char tmp[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(tmp, 1, sizeof(tmp), fp)) > 0 && !rc)
        rc = sbuf_add(&b, tmp, n);
    fclose(fp);
    if (!rc && sbuf_addc(&b, 0)) rc = -ENOMEM;
    if (rc) {
        sbuf_fini(&b);
        return rc;
    }
    *buf = sbuf_steal(&b, len);
    *len -= 1; /* the NUL added above is not part of the file */
    return *buf ? 0 : -ENOMEM;
}

static int test_glob(void *arg, const char *pattern, char ***paths, size_t *n) {
    (void)arg;
    glob_t g;
    *paths = NULL;
    *n = 0;
    int rc = glob(pattern, 0, NULL, &g);
    if (rc == GLOB_NOMATCH) return 0;
    if (rc) return -EINVAL;
    char **v = calloc(g.gl_pathc ? g.gl_pathc : 1, sizeof(*v));
    for (size_t i = 0; v && i < g.gl_pathc; i++)
        if (!(v[i] = strdup(g.gl_pathv[i]))) {
            for (size_t k = 0; k < i; k++)
                free(v[k]);
            free(v);
            v = NULL;
        }
    size_t cnt = g.gl_pathc;
    globfree(&g);
    if (!v) return -ENOMEM;
    *paths = v;
    *n = cnt;
    return 0;
}

/* `promtool test rules`: runs every test file; status 1 if any failed. */
static int cmd_test_rules(const struct flags *f) {
    const char *run[1] = {f->run_pattern};
    struct ruletest_opts o = {.compat_v2 = f->promql_compat_v2,
                              .float_tolerance = f->float_tolerance,
                              .ignore_unknown_fields = f->ignore_unknown_fields,
                              .run = f->run_pattern ? run : NULL,
                              .nrun = f->run_pattern ? 1 : 0,
                              .glob = test_glob};
    int status = 0;
    for (size_t i = 0; i < f->nargs; i++) {
        char *report = NULL;
        int rc = ruletest_run(f->args[i], &o, test_read, NULL, &report);
        if (report) fputs(report, stdout);
        free(report);
        if (rc < 0) {
            fprintf(stderr, "promlet: error: %s\n", strerror(-rc));
            return 1;
        }
        if (rc) status = 1;
    }
    return status;
}

/* ---- the daemon
 * -------------------------------------------------------------------------------------- */

static int run(const struct flags *f) {
    struct agent a = {.flags = f};
    pthread_mutex_init(&a.cfg_lock, NULL);
    a.start_time = (double)agent_now_ms() / 1000.0;
    int status = 1;
    size_t started = 0;
    struct webcfg *web = NULL;

    struct perr err = {0};
    int rc = config_load(f->config_file, &a.cfg, &err);
    if (!rc) {
        size_t n = 0;
        rc = config_rule_files(a.cfg, count_file, &n, &err);
    }
    if (rc) {
        char where[512];
        format_err(where, sizeof(where), f->config_file, &err);
        fprintf(stderr, "promlet: error loading config: %s\n", where);
        goto out;
    }
    a.last_reload_ok = true;
    a.last_reload_success = a.start_time;

    struct store_opts so;
    store_opts_from(a.cfg, &so);
    a.store = store_new(&so);
    a.collectors = collectors_new(f->collectors, &err);
    if (!a.store || !a.collectors) {
        fprintf(stderr, "promlet: error: %s\n", a.store ? err.msg : "out of memory");
        goto out;
    }
    if (f->web_config_file && *f->web_config_file && webcfg_load(f->web_config_file, &web, &err)) {
        char where[512];
        format_err(where, sizeof(where), f->web_config_file, &err);
        fprintf(stderr, "promlet: error loading web config: %s\n", where);
        goto out;
    }
    struct http_opts ho = {.max_request_bytes = f->max_request_bytes, .web = web};
    a.http = http_new(&ho);
    if (!a.http || register_routes(&a)) {
        fprintf(stderr, "promlet: error: out of memory\n");
        goto out;
    }
    for (; started < NMODULES; started++) {
        const struct agent_module *m = modules[started];
        if (m && m->start && m->start(&a, &err)) {
            fprintf(stderr, "promlet: error: starting %s: %s\n", m->name, err.msg);
            goto out;
        }
    }
    if (modules_load(&a, a.cfg, &err)) {
        char where[512];
        format_err(where, sizeof(where), f->config_file, &err);
        fprintf(stderr, "promlet: error loading config: %s\n", where);
        goto out;
    }

    /* Signals are taken synchronously by this thread; block them before threads start. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = http_listen(a.http, f->listen, f->nlisten, &err);
    if (rc) {
        fprintf(stderr, "promlet: error: %s\n", err.msg);
        goto out;
    }
    char vkv[128];
    snprintf(vkv, sizeof(vkv), "version=%s revision=%s", version_string(), version_revision());
    log_write(LOG_LEVEL_INFO, __FILE__, __LINE__, vkv, "Starting promlet");
    for (size_t i = 0; http_bound(a.http, i); i++) {
        char kv[128];
        snprintf(kv, sizeof(kv), "address=%s", http_bound(a.http, i));
        log_write(LOG_LEVEL_INFO, __FILE__, __LINE__, kv, "Listening on");
    }
    __atomic_store_n(&a.ready, true, __ATOMIC_RELEASE);
    LOG_INFO("Server is ready to receive web requests.");

    for (;;) {
        struct timespec tick = {1, 0};
        int sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            LOG_WARN("Received %s, exiting gracefully...", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        if (sig == SIGHUP) {
            char where[512];
            if (agent_reload(&a, &err, where, sizeof(where)))
                LOG_ERROR("Error reloading config: %s", where);
            else
                LOG_INFO("Completed loading of configuration file: %s", f->config_file);
        }
        int64_t now = agent_now_ms();
        store_gc(a.store, now);
        for (size_t i = 0; i < NMODULES; i++)
            if (modules[i] && modules[i]->tick) modules[i]->tick(&a, now);
    }
    status = 0;
out:
    /* The server stops first so no handler runs while modules shut down. */
    http_free(a.http);
    a.http = NULL;
    webcfg_free(web);
    for (size_t i = NMODULES; i-- > 0;)
        if (modules[i] && modules[i]->stop && i < started) modules[i]->stop(&a);
    collectors_free(a.collectors);
    store_free(a.store);
    config_free(a.cfg);
    pthread_mutex_destroy(&a.cfg_lock);
    return status;
}

int main(int argc, char **argv) {
    struct flags f;
    int rc = flags_parse(&f, argc, argv);
    if (rc) {
        flags_fini(&f);
        return 1;
    }
    log_setup(f.log_level, f.log_format);
    int status = 0;
    switch (f.cmd) {
    case CMD_HELP:
        flags_usage();
        break;
    case CMD_VERSION:
        printf("promlet, version %s (branch: %s, revision: %s)\n", version_string(),
               version_branch(), version_revision());
        break;
    case CMD_CHECK_CONFIG:
        status = cmd_check_config(&f);
        break;
    case CMD_CHECK_RULES:
        status = cmd_check_rules(&f);
        break;
    case CMD_TEST_RULES:
        status = cmd_test_rules(&f);
        break;
    case CMD_RUN:
        status = run(&f);
        break;
    }
    flags_fini(&f);
    return status;
}

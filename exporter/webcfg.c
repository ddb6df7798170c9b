/* SPDX-License-Identifier: Apache-2.0 */
/* --web.config.file (exporter-toolkit's web configuration): TLS files, basic-auth users with
 * bcrypt hashes, extra response headers. */
#include "webcfg.h"

#include <crypt.h>
#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

void webcfg_free(struct webcfg *w) {
    if (!w) return;
    free(w->cert_pem);
    free(w->key_pem);
    free(w->client_ca_pem);
    free(w->tls_priorities);
    for (size_t i = 0; i < w->nusers; i++) {
        free(w->users[i].name);
        free(w->users[i].hash);
    }
    free(w->users);
    for (size_t i = 0; i < w->nheaders; i++)
        free(w->headers[i]);
    free(w->headers);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

static int read_file(const char *dir, const char *name, char **out, struct perr *err, int line,
                     int col) {
    char path[4096];
    if (name[0] == '/')
        snprintf(path, sizeof(path), "%s", name);
    else
        snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return perr_set(err, line, col, "cannot read %s: %s", path, strerror(errno));
    /* Certificates, keys and web configs are small; anything near 1 MiB is refused, never
     * cut short. */
    const size_t cap = 1 << 20;
    char *buf = malloc(cap);
    size_t n = buf ? fread(buf, 1, cap, f) : 0;
    int rerr = ferror(f);
    fclose(f);
    if (!buf) return -ENOMEM;
    if (rerr || n == cap) {
        free(buf);
        return perr_set(err, line, col, "cannot read %s: %s", path,
                        rerr ? "read error" : "larger than 1 MiB");
    }
    buf[n] = '\0';
    free(*out); /* a section given twice is refused before this; defensive */
    *out = buf;
    return 0;
}

struct ctx {
    yaml_document_t *doc;
    struct perr *err;
    const char *dir;
    int rc;
};

static yaml_node_t *nd(struct ctx *c, int id) {
    return yaml_document_get_node(c->doc, id);
}

static const char *scal(const yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int bad(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(struct ctx *c, const yaml_node_t *n, const char *fmt, ...) {
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return c->rc = perr_set(c->err, (int)n->start_mark.line + 1, (int)n->start_mark.column + 1,
                            "%s", msg);
}

static bool is_map(const yaml_node_t *n) {
    return n && n->type == YAML_MAPPING_NODE;
}

static int tls_section(struct ctx *c, struct webcfg *w, yaml_node_t *n) {
    if (!is_map(n)) return bad(c, n, "%s: expected a mapping", "tls_server_config");
    const char *min = NULL, *max = NULL;
    yaml_node_t *certn = NULL, *keyn = NULL, *can = NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = nd(c, p->key), *v = nd(c, p->value);
        const char *key = scal(k), *val = scal(v);
        if (!key || !val)
            return bad(c, k, "%s: keys and values must be strings", "tls_server_config");
        if (!strcmp(key, "cert_file"))
            certn = v;
        else if (!strcmp(key, "key_file"))
            keyn = v;
        else if (!strcmp(key, "client_ca_file"))
            can = v;
        else if (!strcmp(key, "client_auth_type")) {
            /* Client certificates would need GnuTLS's verification API on top of
             * libmicrohttpd; refused clearly rather than accepted and not enforced. */
            if (strcmp(val, "NoClientCert"))
                return bad(c, v, "client_auth_type %s is not supported (only NoClientCert)", val);
        } else if (!strcmp(key, "min_version"))
            min = val;
        else if (!strcmp(key, "max_version"))
            max = val;
        else
            return bad(c, k, "field %s not found in type web.TLSConfig", key);
    }
    if (!certn || !keyn)
        return bad(c, n, "%s: cert_file and key_file are required", "tls_server_config");
    int rc = read_file(c->dir, scal(certn), &w->cert_pem, c->err, (int)certn->start_mark.line + 1,
                       (int)certn->start_mark.column + 1);
    if (!rc)
        rc = read_file(c->dir, scal(keyn), &w->key_pem, c->err, (int)keyn->start_mark.line + 1,
                       (int)keyn->start_mark.column + 1);
    if (!rc && can)
        rc = read_file(c->dir, scal(can), &w->client_ca_pem, c->err, (int)can->start_mark.line + 1,
                       (int)can->start_mark.column + 1);
    if (rc) return c->rc = rc;
    /* exporter-toolkit's default minimum is TLS 1.2. */
    static const struct {
        const char *name, *prio;
    } vers[] = {{"TLS10", "+VERS-TLS1.0"},
                {"TLS11", "+VERS-TLS1.1"},
                {"TLS12", "+VERS-TLS1.2"},
                {"TLS13", "+VERS-TLS1.3"}};
    int lo = 2, hi = 3;
    for (int i = 0; i < 4; i++) {
        if (min && !strcmp(min, vers[i].name)) lo = i;
        if (max && !strcmp(max, vers[i].name)) hi = i;
    }
    for (int k = 0; k < 2; k++) {
        const char *v = k ? max : min;
        bool known = !v;
        for (int i = 0; i < 4 && !known; i++)
            known = !strcmp(v, vers[i].name);
        if (!known) return bad(c, n, "unknown TLS version: %s (TLS10, TLS11, TLS12, TLS13)", v);
    }
    char prio[200] = "NORMAL:-VERS-ALL";
    for (int i = lo; i <= hi; i++) {
        strncat(prio, ":", sizeof(prio) - strlen(prio) - 1);
        strncat(prio, vers[i].prio, sizeof(prio) - strlen(prio) - 1);
    }
    if (lo > hi) return bad(c, n, "%s: min_version is above max_version", "tls_server_config");
    w->tls_priorities = strdup(prio);
    return w->tls_priorities ? 0 : (c->rc = -ENOMEM);
}

static int users_section(struct ctx *c, struct webcfg *w, yaml_node_t *n) {
    if (!is_map(n)) return bad(c, n, "%s: expected a mapping", "basic_auth_users");
    size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    w->users = calloc(cnt ? cnt : 1, sizeof(*w->users));
    if (!w->users) return c->rc = -ENOMEM;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = nd(c, p->key), *v = nd(c, p->value);
        const char *user = scal(k), *hash = scal(v);
        if (!user || !hash)
            return bad(c, k, "%s: users and hashes must be strings", "basic_auth_users");
        if (strncmp(hash, "$2a$", 4) && strncmp(hash, "$2b$", 4) && strncmp(hash, "$2y$", 4))
            return bad(c, v, "basic_auth_users: the hash of %s is not a bcrypt hash", user);
        struct webcfg_user *u = &w->users[w->nusers++];
        u->name = strdup(user);
        u->hash = strdup(hash);
        if (!u->name || !u->hash) return c->rc = -ENOMEM;
    }
    return 0;
}

static int server_section(struct ctx *c, struct webcfg *w, yaml_node_t *n) {
    if (!is_map(n)) return bad(c, n, "%s: expected a mapping", "http_server_config");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = nd(c, p->key), *v = nd(c, p->value);
        const char *key = scal(k);
        if (key && !strcmp(key, "headers") && is_map(v)) {
            size_t cnt = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
            w->headers = calloc(cnt ? cnt : 1, sizeof(char *));
            if (!w->headers) return c->rc = -ENOMEM;
            for (yaml_node_pair_t *h = v->data.mapping.pairs.start; h < v->data.mapping.pairs.top;
                 h++) {
                const char *hn = scal(nd(c, h->key)), *hv = scal(nd(c, h->value));
                if (!hn || !hv)
                    return bad(c, nd(c, h->key), "%s: expected string pairs", "headers");
                if (asprintf(&w->headers[w->nheaders], "%s: %s", hn, hv) < 0)
                    return c->rc = -ENOMEM;
                w->nheaders++;
            }
        } else if (key && !strcmp(key, "http2")) {
            /* HTTP/2 is not served; accepted for compatibility. */
        } else {
            return bad(c, k, "field %s not found in type web.HTTPConfig", key ? key : "?");
        }
    }
    return 0;
}

int webcfg_load(const char *path, struct webcfg **out, struct perr *err) {
    *out = NULL;
    char *text = NULL;
    int rc = read_file(".", path, &text, err, 0, 0);
    if (rc) return rc;
    struct webcfg *w = calloc(1, sizeof(*w));
    if (w) pthread_mutex_init(&w->lock, NULL);
    char *tmp = strdup(path);
    if (!w || !tmp) {
        free(text);
        free(tmp);
        free(w);
        return -ENOMEM;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    if (!yaml_parser_load(&parser, &doc)) {
        rc = perr_set(err, (int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1,
                      "yaml: %s", parser.problem ? parser.problem : "syntax error");
        yaml_parser_delete(&parser);
        free(text);
        free(tmp);
        webcfg_free(w);
        return rc;
    }
    struct ctx c = {.doc = &doc, .err = err, .dir = dirname(tmp)};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && root->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
             p < root->data.mapping.pairs.top && !c.rc; p++) {
            yaml_node_t *k = nd(&c, p->key), *v = nd(&c, p->value);
            const char *key = scal(k);
            for (yaml_node_pair_t *q = root->data.mapping.pairs.start; q < p && key; q++)
                if (scal(nd(&c, q->key)) && !strcmp(scal(nd(&c, q->key)), key)) {
                    bad(&c, k, "key \"%s\" already set in map", key);
                    break;
                }
            if (c.rc) break;
            if (key && !strcmp(key, "tls_server_config"))
                tls_section(&c, w, v);
            else if (key && !strcmp(key, "basic_auth_users"))
                users_section(&c, w, v);
            else if (key && !strcmp(key, "http_server_config"))
                server_section(&c, w, v);
            else
                bad(&c, k, "field %s not found in type web.Config", key ? key : "?");
        }
    } else if (root && !(root->type == YAML_SCALAR_NODE && !*scal(root))) {
        bad(&c, root, "%s: expected a mapping", "web config");
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    free(text);
    free(tmp);
    if (c.rc) {
        webcfg_free(w);
        return c.rc;
    }
    *out = w;
    return 0;
}

static uint64_t digest(const char *hash, const char *user, const char *pw) {
    /* FNV-1a over hash, user and password with separators; the cache only short-cuts a
     * repeat of an exact triple already checked by bcrypt. */
    uint64_t h = 0xcbf29ce484222325ULL;
    const char *parts[] = {hash, user, pw};
    for (int i = 0; i < 3; i++) {
        for (const char *p = parts[i]; *p; p++)
            h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
        h = (h ^ 0xff) * 0x100000001b3ULL;
    }
    return h;
}

bool webcfg_check_user(struct webcfg *w, const char *user, const char *password) {
    const struct webcfg_user *u = NULL;
    for (size_t i = 0; i < w->nusers && !u; i++)
        if (!strcmp(w->users[i].name, user)) u = &w->users[i];
    if (!u) {
        /* Spend a bcrypt anyway so response time does not tell which users exist (as
         * exporter-toolkit does); the result is ignored. */
        struct crypt_data cd;
        memset(&cd, 0, sizeof(cd));
        (void)crypt_r(password, w->users[0].hash, &cd);
        return false;
    }
    uint64_t d = digest(u->hash, user, password);
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; i < WEBCFG_AUTH_CACHE; i++)
        if (w->cache[i].digest == d && d) {
            bool ok = w->cache[i].ok;
            pthread_mutex_unlock(&w->lock);
            return ok;
        }
    pthread_mutex_unlock(&w->lock);
    struct crypt_data cd;
    memset(&cd, 0, sizeof(cd));
    const char *r = crypt_r(password, u->hash, &cd);
    bool ok = r && r[0] != '*' && strcmp(r, u->hash) == 0;
    pthread_mutex_lock(&w->lock);
    memmove(&w->cache[1], &w->cache[0], sizeof(w->cache[0]) * (WEBCFG_AUTH_CACHE - 1));
    w->cache[0].digest = d;
    w->cache[0].ok = ok;
    pthread_mutex_unlock(&w->lock);
    return ok;
}

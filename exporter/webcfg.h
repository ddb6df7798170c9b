/* SPDX-License-Identifier: Apache-2.0 */
/* --web.config.file: TLS and basic auth in exporter-toolkit's format. */
#ifndef PROMLET_EXPORTER_WEBCFG_H
#define PROMLET_EXPORTER_WEBCFG_H

#include "ruleeval.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEBCFG_AUTH_CACHE 64

struct webcfg_user {
    char *name;
    char *hash; /* bcrypt ($2a$, $2b$, $2y$) */
};

struct webcfg {
    char *cert_pem; /* contents of tls_server_config.cert_file, NULL without TLS */
    char *key_pem;
    char *client_ca_pem;  /* client_ca_file (read and kept; client certs are not requested) */
    char *tls_priorities; /* GnuTLS priority string from min_version/max_version */
    struct webcfg_user *users;
    size_t nusers;
    char **headers; /* http_server_config.headers as "Name: value" */
    size_t nheaders;
    /* Verified (user, password) digests: bcrypt costs ~50-100 ms per check. */
    pthread_mutex_t lock;
    struct {
        uint64_t digest;
        bool ok;
    } cache[WEBCFG_AUTH_CACHE];
};

/* Reads and validates path (YAML). Returns 0 and a new webcfg in *out, or -EINVAL with
 * err at line:col (file errors: -errno with err->msg). Relative file names resolve against
 * the folder of path, as exporter-toolkit does. */
int webcfg_load(const char *path, struct webcfg **out, struct perr *err);
void webcfg_free(struct webcfg *w);

/* Checks a user's password against the configured bcrypt hash; verified pairs are cached
 * (bcrypt is deliberately slow), as exporter-toolkit does. Thread-safe. */
bool webcfg_check_user(struct webcfg *w, const char *user, const char *password);

#endif

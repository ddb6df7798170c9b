/* SPDX-License-Identifier: Apache-2.0 */
/* Test driver: parses collector flags, runs one scrape (or N), prints the text exposition. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "expose.h"
#include "log.h"

int main(int argc, char **argv) {
    struct col_options *o = col_options_new();
    if (!o) return 1;
    long repeat = 1;
    bool gzip = false;
    log_setup(LOG_LEVEL_WARN, LOG_FORMAT_LOGFMT);
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0) {
            fprintf(stderr, "scrape_dump: unexpected argument %s\n", argv[i]);
            return 2;
        }
        char *flag = strdup(argv[i] + 2), *eq = strchr(flag, '=');
        if (eq) *eq++ = '\0';
        struct perr err = {0};
        int rc;
        if (strcmp(flag, "repeat") == 0 && eq) {
            repeat = atol(eq);
            rc = 1;
        } else if (strcmp(flag, "gzip") == 0) {
            gzip = true;
            rc = 1;
        } else if (strcmp(flag, "log.level") == 0 && eq) {
            enum log_level l;
            rc = log_parse_level(eq, &l) ? -EINVAL : 1;
            if (rc == 1) log_setup(l, LOG_FORMAT_LOGFMT);
        } else if (strcmp(flag, "help") == 0) {
            struct sbuf u;
            sbuf_init(&u);
            col_options_usage(&u);
            fputs(u.data, stdout);
            sbuf_fini(&u);
            free(flag);
            col_options_free(o);
            return 0;
        } else {
            rc = col_options_set(o, flag, eq, &err);
        }
        if (rc <= 0) {
            fprintf(stderr, "scrape_dump: %s: %s\n", argv[i], rc == 0 ? "unknown flag" : err.msg);
            free(flag);
            col_options_free(o);
            return 2;
        }
        free(flag);
    }
    struct perr err = {0};
    struct collectors *c = collectors_new(o, &err);
    col_options_free(o);
    if (!c) {
        fprintf(stderr, "scrape_dump: %s\n", err.msg);
        return 2;
    }
    int status = 0;
    struct sbuf text, z;
    sbuf_init(&text);
    sbuf_init(&z);
    for (long r = 0; r < repeat && !status; r++) {
        struct mset *s = mset_new();
        sbuf_reset(&text);
        sbuf_reset(&z);
        if (!s || collectors_scrape(c, s) || mset_write_text(s, &text) ||
            (gzip && expose_gzip(text.data, text.len, &z)))
            status = 1;
        mset_free(s);
    }
    if (!status && repeat == 1) fwrite(text.data, 1, text.len, stdout);
    sbuf_fini(&text);
    sbuf_fini(&z);
    collectors_free(c);
    return status;
}

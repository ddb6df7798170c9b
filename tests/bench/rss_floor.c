/* SPDX-License-Identifier: Apache-2.0 */
/* The resident-memory floor of promlet's libraries: a program that links the same shared
 * libraries (one call into each, so the linker keeps them), lets their load-time constructors
 * run (libmicrohttpd starts GnuTLS), prints its pid and waits. push_rw_bench.py reads its
 * VmRSS beside promlet's: what promlet holds above it is promlet's own. */
#include <crypt.h>
#include <curl/curl.h>
#include <math.h>
#include <microhttpd.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <protobuf-c/protobuf-c.h>
#include <snappy-c.h>
#include <stdio.h>
#include <unistd.h>
#include <yaml.h>
#include <zlib.h>

int main(int argc, char **argv) {
    (void)argv;
    /* Calls that do no work but keep every library in the link (argc is never 7 here). */
    if (argc == 7) {
        unsigned v = 0;
        printf("%d %s %s %s %s %s %d %zu %p %f\n", (int)MHD_is_feature_supported(MHD_FEATURE_TLS),
               curl_version(), yaml_get_version_string(), zlibVersion(), protobuf_c_version(),
               crypt("x", "$2b$04$0123456789012345678901"), pcre2_config(PCRE2_CONFIG_UNICODE, &v),
               snappy_max_compressed_length(1), (void *)0, sqrt((double)argc));
    }
    printf("%d\n", (int)getpid());
    fflush(stdout);
    pause();
    return 0;
}

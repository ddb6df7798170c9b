/* SPDX-License-Identifier: Apache-2.0 */
/* expfmt_verdict: prints "path<TAB>rc<TAB>error" for each file, for differential runs against
 * expfmt. */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    static unsigned char buf[1 << 20];
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            printf("%s\t-2\tcannot open\n", argv[i]);
            continue;
        }
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        struct perr e;
        int rc = expfmt_parse(buf, n, NULL, &e);
        printf("%s\t%d\t%s\n", argv[i], rc, rc ? e.msg : "");
    }
    return 0;
}

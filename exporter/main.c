/* SPDX-License-Identifier: Apache-2.0 */
/* promlet entry point (skeleton; the daemon lands with issue 2). */
#include "version.h"

#include <stdio.h>

int main(void)
{
    printf("promlet %s\n", version_string());
    return 0;
}

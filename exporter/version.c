/* SPDX-License-Identifier: Apache-2.0 */
/* Build identity. */
#include "version.h"

const char *version_string(void)
{
    return PROMLET_VERSION;
}

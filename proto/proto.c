/* SPDX-License-Identifier: Apache-2.0 */
/* proto: helpers shared by both wire formats (staleness marker). */
#include "proto.h"

#include <string.h>

bool proto_is_stale_nan(double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits == PROTO_STALE_NAN_BITS;
}

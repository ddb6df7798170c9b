/* SPDX-License-Identifier: Apache-2.0 */
/* Build identity: version string and the values of promlet_build_info. */
#ifndef PROMLET_EXPORTER_VERSION_H
#define PROMLET_EXPORTER_VERSION_H

/* Returns the version ("0.1.0"); static storage. */
const char *version_string(void);

#endif

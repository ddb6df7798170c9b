/* SPDX-License-Identifier: Apache-2.0 */
/* Build identity: the values of --version and promlet_build_info. */
#ifndef PROMLET_EXPORTER_VERSION_H
#define PROMLET_EXPORTER_VERSION_H

/* Each returns static storage. */
const char *version_string(void);   /* "0.1.0" */
const char *version_revision(void); /* git commit, "unknown" outside a checkout */
const char *version_branch(void);

#endif

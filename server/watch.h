/* watch: notices replaced certificate and key files (certbot, lego, cert-manager) */
#ifndef MTASTSD_WATCH_H
#define MTASTSD_WATCH_H

#include <stdint.h>

#include "config.h"

/* A fingerprint of every certificate and key file the config names or its certs
 * directory holds (device, inode, size and modification time of each, following
 * symlinks), so that any replacement, rename into place or in-place rewrite changes it.
 * Two calls with no file changed in between return the same value. */
uint64_t watch_fingerprint(const struct config *c);

#endif

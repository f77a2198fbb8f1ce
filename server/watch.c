/* watch: notices replaced certificate and key files (certbot, lego, cert-manager) */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "watch.h"

#define FNV_OFFSET 14695981039346656037ull
#define FNV_PRIME 1099511628211ull

static uint64_t mix(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= FNV_PRIME;
	}
	return h;
}

static uint64_t mix_file(uint64_t h, const char *path)
{
	struct stat st;
	struct {
		unsigned long long dev, ino, size;
		long long sec, nsec;
	} key = {0};

	h = mix(h, path, strlen(path) + 1);
	if (stat(path, &st) == 0) {
		key.dev = st.st_dev;
		key.ino = st.st_ino;
		key.size = (unsigned long long)st.st_size;
		key.sec = st.st_mtim.tv_sec;
		key.nsec = st.st_mtim.tv_nsec;
	}
	return mix(h, &key, sizeof(key));
}

/* The directory's entries in readdir order are not stable across renames, so each
 * entry is hashed on its own and the results are summed (order-independent). */
static uint64_t dir_fingerprint(const char *dir)
{
	DIR *dh = opendir(dir);
	struct dirent *e;
	uint64_t sum = 0;
	char path[4096];

	if (dh == NULL)
		return 1;
	while ((e = readdir(dh)) != NULL) {
		struct stat st;
		int r;

		if (e->d_name[0] == '.')
			continue;
		r = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (r < 0 || (size_t)r >= sizeof(path))
			continue;
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			uint64_t h = FNV_OFFSET;

			r = snprintf(path, sizeof(path), "%s/%s/fullchain.pem", dir, e->d_name);
			if (r > 0 && (size_t)r < sizeof(path))
				h = mix_file(h, path);
			r = snprintf(path, sizeof(path), "%s/%s/privkey.pem", dir, e->d_name);
			if (r > 0 && (size_t)r < sizeof(path))
				h = mix_file(h, path);
			sum += h;
		} else {
			sum += mix_file(FNV_OFFSET, path);
		}
	}
	closedir(dh);
	return sum;
}

uint64_t watch_fingerprint(const struct config *c)
{
	uint64_t h = FNV_OFFSET;

	for (size_t i = 0; i < c->n_domains; i++) {
		if (c->domains[i].cert == NULL)
			continue;
		h = mix_file(h, c->domains[i].cert);
		h = mix_file(h, c->domains[i].key);
	}
	if (c->certs_dir != NULL) {
		uint64_t d = dir_fingerprint(c->certs_dir);

		h = mix(h, &d, sizeof(d));
	}
	return h;
}

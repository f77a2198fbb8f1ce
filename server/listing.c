/* listing: whether files exist, with one readdir per directory instead of one access(2)
 * per file (a million access(2) calls in one directory cost seconds) */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listing.h"

struct listing_dir {
	char *dir;
	struct hash names; /* borrows from v */
	char **v;
	size_t n;
};

int listing_init(struct listing *l)
{
	memset(l, 0, sizeof(*l));
	return hash_init(&l->dirs, 16);
}

void listing_finish(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++) {
		for (size_t k = 0; k < l->v[i]->n; k++)
			free(l->v[i]->v[k]);
		free(l->v[i]->v);
		hash_finish(&l->v[i]->names);
		free(l->v[i]->dir);
		free(l->v[i]);
	}
	free(l->v);
	hash_finish(&l->dirs);
}

static struct listing_dir *list_dir(struct listing *l, const char *dir, size_t len)
{
	struct listing_dir *dl = hash_get(&l->dirs, dir, len), **v;
	struct dirent *e;
	size_t cap = 0;
	DIR *dh;

	if (dl != NULL)
		return dl;
	if ((dl = calloc(1, sizeof(*dl))) == NULL || (dl->dir = strndup(dir, len)) == NULL ||
	    hash_init(&dl->names, 64) < 0 || (v = realloc(l->v, (l->n + 1) * sizeof(*v))) == NULL) {
		if (dl != NULL) {
			hash_finish(&dl->names);
			free(dl->dir);
		}
		free(dl);
		return NULL;
	}
	l->v = v;
	l->v[l->n++] = dl;
	hash_put(&l->dirs, dl->dir, dl, NULL);
	if ((dh = opendir(dl->dir)) == NULL)
		return dl;
	while ((e = readdir(dh)) != NULL) {
		if (dl->n == cap) {
			char **nv = realloc(dl->v, (cap = cap ? cap * 2 : 256) * sizeof(*nv));

			if (nv == NULL)
				break;
			dl->v = nv;
		}
		if ((dl->v[dl->n] = strdup(e->d_name)) == NULL)
			break;
		hash_put(&dl->names, dl->v[dl->n], dl, NULL);
		dl->n++;
	}
	closedir(dh);
	return dl;
}

bool listing_has(struct listing *l, const char *path)
{
	const char *slash = strrchr(path, '/');
	struct listing_dir *dl;

	if (slash == NULL || (dl = list_dir(l, path, (size_t)(slash - path))) == NULL)
		return access(path, F_OK) == 0;
	return hash_get(&dl->names, slash + 1, strlen(slash + 1)) != NULL;
}

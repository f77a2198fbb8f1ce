/* hash: open-addressing map from a host name (ASCII, case-insensitive) to a pointer */
#ifndef MTASTSD_HASH_H
#define MTASTSD_HASH_H

#include <stddef.h>
#include <stdint.h>

struct hash_slot {
	const char *key; /* borrowed: must outlive the table; NULL = empty */
	size_t key_len;
	uint32_t h;
	void *value;
};

struct hash {
	struct hash_slot *slots;
	size_t cap; /* power of two */
	size_t n;
};

/* expected: number of keys to size for (the table still grows). 0 / -1 on allocation failure. */
int hash_init(struct hash *t, size_t expected);
void hash_finish(struct hash *t);
/* Inserts key -> value. Returns 0 when added, 1 when the key was already there (the old
 * value is kept and *ret_old set to it if ret_old != NULL), -1 on allocation failure. */
int hash_put(struct hash *t, const char *key, void *value, void **ret_old);
/* Sets key -> value, replacing the value (and the borrowed key) when the key is there.
 * 0 / -1 on allocation failure. */
int hash_set(struct hash *t, const char *key, void *value);
/* Case-insensitive lookup of key[0..len); NULL when absent. Never allocates. */
void *hash_get(const struct hash *t, const char *key, size_t len);

#endif

/* hash: open-addressing (linear probing) map from ASCII host names, case-insensitive */
#include "hash.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MIN_CAP 16

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* FNV-1a over the lowercased bytes, then a murmur3 finalizer so that the low bits
 * used for the slot index depend on every input byte. */
static uint32_t hash_key(const char *key, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		h ^= lower((unsigned char)key[i]);
		h *= 16777619u;
	}
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

static bool key_equal(const char *a, const char *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return false;
	return true;
}

/* Smallest power of two >= 2 * n (load factor <= 0.5), or 0 on overflow. */
static size_t cap_for(size_t n)
{
	size_t cap = MIN_CAP;
	while (cap / 2 < n) {
		if (cap > SIZE_MAX / 2)
			return 0;
		cap *= 2;
	}
	return cap;
}

int hash_init(struct hash *t, size_t expected)
{
	memset(t, 0, sizeof(*t));
	size_t cap = cap_for(expected);
	if (!cap)
		return -1;
	t->slots = calloc(cap, sizeof(*t->slots));
	if (!t->slots)
		return -1;
	t->cap = cap;
	return 0;
}

void hash_finish(struct hash *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* The slot holding key, or the empty slot where it would go. cap must be non-zero. */
static struct hash_slot *find_slot(const struct hash *t, const char *key, size_t len, uint32_t h)
{
	size_t mask = t->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct hash_slot *s = &t->slots[i];
		if (!s->key)
			return s;
		if (s->h == h && s->key_len == len && key_equal(s->key, key, len))
			return s;
	}
}

static int grow(struct hash *t, size_t n)
{
	size_t cap = cap_for(n);
	if (!cap)
		return -1;
	if (cap <= t->cap)
		return 0;
	struct hash_slot *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -1;
	size_t mask = cap - 1;
	for (size_t i = 0; i < t->cap; i++) {
		const struct hash_slot *s = &t->slots[i];
		if (!s->key)
			continue;
		size_t j = s->h & mask;
		while (slots[j].key)
			j = (j + 1) & mask;
		slots[j] = *s;
	}
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
	return 0;
}

int hash_put(struct hash *t, const char *key, void *value, void **ret_old)
{
	size_t len = strlen(key);
	uint32_t h = hash_key(key, len);
	if (t->cap) {
		struct hash_slot *s = find_slot(t, key, len, h);
		if (s->key) {
			if (ret_old)
				*ret_old = s->value;
			return 1;
		}
	}
	if (grow(t, t->n + 1) < 0)
		return -1;
	struct hash_slot *s = find_slot(t, key, len, h);
	*s = (struct hash_slot){.key = key, .key_len = len, .h = h, .value = value};
	t->n++;
	return 0;
}

int hash_set(struct hash *t, const char *key, void *value)
{
	size_t len = strlen(key);
	uint32_t h = hash_key(key, len);

	if (t->cap) {
		struct hash_slot *s = find_slot(t, key, len, h);

		if (s->key) {
			s->key = key;
			s->value = value;
			return 0;
		}
	}
	return hash_put(t, key, value, NULL) < 0 ? -1 : 0;
}

void *hash_get(const struct hash *t, const char *key, size_t len)
{
	if (!t->cap)
		return NULL;
	const struct hash_slot *s = find_slot(t, key, len, hash_key(key, len));
	return s->key ? s->value : NULL;
}

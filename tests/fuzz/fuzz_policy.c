/* fuzz_policy: the strict RFC 8461 policy parser on any bytes; whatever it accepts renders
 * to a canonical body that parses again to the same policy. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy p, q;
	size_t len, len2;
	char *body, *again;

	if (size > POLICY_BODY_MAX + 16)
		return 0;
	policy_init(&p);
	if (policy_parse(&p, (const char *)data, size, NULL, "fuzz") != 0)
		return 0;
	body = policy_render(&p, &len);
	if (body != NULL) {
		policy_init(&q);
		if (policy_parse(&q, body, len, NULL, "canonical") != 0)
			abort(); /* the canonical form of an accepted policy must parse */
		again = policy_render(&q, &len2);
		if (again == NULL || len2 != len || memcmp(again, body, len) != 0)
			abort(); /* and render to the same bytes */
		free(again);
		policy_finish(&q);
		free(body);
	}
	policy_finish(&p);
	return 0;
}

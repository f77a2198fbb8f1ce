/* fuzz_config: the configuration loader on any file: every outcome is a config or a list of
 * FILE:LINE errors, never a crash, a leak or a hang. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	struct diag d;
	struct config *c;
	int fd = memfd_create("fuzz.ini", MFD_CLOEXEC);

	if (fd < 0 || size > 1 << 20)
		goto out;
	if (write(fd, data, size) != (ssize_t)size)
		goto out;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	diag_init(&d);
	c = config_load(path, &d);
	if (c != NULL && d.n_errors != 0)
		__builtin_trap(); /* a config with errors must not load */
	if (c == NULL && d.n_errors == 0)
		__builtin_trap(); /* a refused one says why */
	config_destroy(c);
	diag_finish(&d);
out:
	if (fd >= 0)
		close(fd);
	return 0;
}

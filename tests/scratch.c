/* scratch: a private temporary directory for each test of a unit suite */
#include "scratch.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEMPLATE "/tmp/mtastsd-test.XXXXXX"

char scratch_dir[] = TEMPLATE;

void scratch_setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(scratch_dir));
}

void scratch_teardown(void)
{
	char cmd[sizeof(TEMPLATE) + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", scratch_dir);
	ck_assert_int_eq(system(cmd), 0);
	memcpy(scratch_dir, TEMPLATE, sizeof(TEMPLATE)); /* mkdtemp() wrote over the X's */
}

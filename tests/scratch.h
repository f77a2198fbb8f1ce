/* scratch: a private temporary directory for each test of a unit suite, as a Check
 * checked fixture: tcase_add_checked_fixture(tc, scratch_setup, scratch_teardown) */
#ifndef MTASTSD_TESTS_SCRATCH_H
#define MTASTSD_TESTS_SCRATCH_H

/* The directory's path while a test runs. */
extern char scratch_dir[];

/* Makes a new directory (the test fails if it cannot). */
void scratch_setup(void);
/* Removes it with everything in it (the test fails if it cannot). */
void scratch_teardown(void);

#endif

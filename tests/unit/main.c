/*
 * Runs every Check suite in one SRunner.  The suite list is generated
 * from the tests/unit/check_*.c file names (suites.h, see Makefile);
 * CK_RUN_SUITE=<name> runs one suite.  Prints "N passed, M failed";
 * a run that found no test (a misspelt or stale CK_RUN_SUITE left in
 * the environment) counts as one failure, as in the other families.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#define SUITE(name) Suite *name##_suite(void);
#include "suites.h"
#undef SUITE

int
main(void)
{
	SRunner *sr = srunner_create(NULL);
	int run, failed, passed;

#define SUITE(name) srunner_add_suite(sr, name##_suite());
#include "suites.h"
#undef SUITE
	srunner_run_all(sr, CK_NORMAL);
	run = srunner_ntests_run(sr);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	passed = run - failed;
	if (run == 0) {
		puts("unit: no test ran");
		failed = 1;
	}
	printf("unit: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

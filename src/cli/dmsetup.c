/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "applets.h"

#include <stdio.h>

int dmsetup_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "dmsetup: not available in this build of partmap yet\n");
	return 1;
}

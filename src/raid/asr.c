/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Adaptec HostRAID (ASR), big-endian: a reserved block at LBA N-1 points at a RAID table of 64-byte
 * config lines; this disk's line is the one whose magic is the disk's, its array the logical (FWL)
 * line before it, a two-level (FWL_2) line on top makes RAID10 (facts: ../shared/reference/dmraid.md
 * §1.10). */
#include "fmtutil.h"
#include "../util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASR_B0 0x37FC4D1Eu
#define ASR_SMAGIC 0x4450544Du
#define ASR_TABLE_ID 0x900765C4u
#define ASR_LINE 64
#define ASR_LINES_MAX 127
#define ASR_TABLE_SECTORS 16

enum { ASR_FWP = 0, ASR_FWL = 1, ASR_FWL2 = 3 };
enum { ASR_R0 = 0, ASR_R1 = 1, ASR_SPARE = 0xFE };
enum { ASR_FAILED = 3 };

struct asr_line {
	unsigned count, level, type, state;
	uint32_t magic, cap;
	unsigned stripe;
	uint64_t id; /* hba:channel:lun:id, dmraid's member order */
	char name[17];
};

static void asr_line(struct asr_line *l, const uint8_t *p)
{
	l->count = pm_raid_be16(p);
	l->magic = pm_raid_be32(p + 4);
	l->level = p[8];
	l->type = p[9];
	l->state = p[0xA];
	l->id = (uint64_t)p[0xD] << 48 | (uint64_t)p[0xE] << 40 | (uint64_t)p[0xF] << 32 | pm_raid_be32(p + 0x10);
	l->cap = pm_raid_be32(p + 0x18);
	l->stripe = pm_raid_be16(p + 0x1C);
	pm_rf_field(l->name, p + 0x30, 16);
}

static enum pm_raid_type asr_type(unsigned t)
{
	return t == ASR_R0 ? PM_RT_RAID0 : t == ASR_R1 ? PM_RT_RAID1 : t == ASR_SPARE ? PM_RT_SPARE : PM_RT_UNDEF;
}

static int asr_read(struct pm_disk *d, const char *serial, struct pm_raid_dev *out, size_t max, char *why,
		    size_t whylen)
{
	(void)serial;
	uint8_t rb[512];
	uint64_t n = pm_disk_sectors(d), at;
	int r = pm_rf_tail(d, 1, rb, sizeof(rb), &at);
	if (r <= 0)
		return r;
	if (pm_raid_be32(rb) != ASR_B0 || pm_raid_be32(rb + 0x100) != ASR_SMAGIC)
		return 0;
	if (rb[0x3F] != 8)
		return pm_rf_bad(why, whylen, "asr: ASR v%u detected, but we only support v8", rb[0x3F]);
	uint32_t drivemagic = pm_raid_be32(rb + 0x40);
	uint64_t tbl = pm_raid_be32(rb + 0x104);

	_cleanup_free_ uint8_t *t = calloc(ASR_TABLE_SECTORS, 512);
	if (!t)
		return -ENOMEM;
	if ((r = pm_rf_read(d, tbl * 512, t, 512, "asr", "the RAID table", why, whylen)) < 0)
		return r;
	if (pm_raid_be32(t) != ASR_TABLE_ID)
		return pm_rf_bad(why, whylen, "asr: Invalid magic number in RAID table; saw 0x%X, expected 0x%X",
				 pm_raid_be32(t), ASR_TABLE_ID);
	uint32_t version = pm_raid_be32(t + 4);
	unsigned maxelm = pm_raid_be16(t + 8), cnt = pm_raid_be16(t + 0xA), elmsize = pm_raid_be16(t + 0xC);
	if (!cnt || cnt >= maxelm || cnt > ASR_LINES_MAX)
		return pm_rf_bad(why, whylen, "asr: Invalid RAID config table count (%u of %u)", cnt, maxelm);
	if (elmsize != ASR_LINE)
		return pm_rf_bad(why, whylen, "asr: Wrong RAID config line size %u", elmsize);
	if (cnt > 7 && (r = pm_rf_read(d, (tbl + 1) * 512, t + 512, (size_t)(cnt - 7) * ASR_LINE, "asr",
				      "the RAID table", why, whylen)) < 0)
		return r;
	const uint8_t *lines = t + 0x40;
	/* the line checksum is kept only by version 1 tables */
	if (version < 2 && (pm_rf_bytes(lines, (size_t)cnt * ASR_LINE) & 0xFFFF) != pm_raid_be16(t + 0xE))
		return pm_rf_bad(why, whylen, "asr: Invalid RAID config table checksum");

	struct asr_line l[ASR_LINES_MAX];
	for (unsigned i = 0; i < cnt; i++) {
		asr_line(&l[i], lines + (size_t)i * ASR_LINE);
		/* an empty name is line 0's; trailing white space (up to the field's end) goes */
		if (!l[i].name[0])
			pm_rf_field(l[i].name, lines + 0x30, 16);
		for (int j = 15; j >= 0 && isspace((unsigned char)l[i].name[j]); j--)
			l[i].name[j] = 0;
	}
	int me = -1, fwl = -1, top = -1;
	for (int i = (int)cnt - 1; i >= 0 && me < 0; i--)
		if (l[i].magic == drivemagic)
			me = i;
	if (me < 0)
		return pm_rf_bad(why, whylen, "asr: Could not find device in config table!");
	for (int j = me - 1; j >= 0 && fwl < 0; j--)
		if (l[j].level == ASR_FWL)
			fwl = j;
	for (unsigned i = 0; i < cnt; i++) {
		if (l[i].level == ASR_FWL)
			top = (int)i;
		else if (l[i].level == ASR_FWL2) {
			top = (int)i;
			break;
		}
	}
	if (l[me].state == ASR_FAILED)
		return pm_rf_bad(why, whylen, "asr: the disk is marked failed");
	if (!l[me].cap)
		return pm_rf_bad(why, whylen, "asr: zero sectors");
	if (!pm_rf_fits(d, 0, l[me].cap))
		return pm_rf_bad(why, whylen, "asr: %u sectors past the end of the disk", l[me].cap);

	if ((r = pm_rf_rec(out, max, &pm_raid_asr)) < 0)
		return r;
	/* dmraid's state table starts with code 0 (optimal), so every member reads "ok" */
	out->status = PM_RS_OK;
	out->offset = 0;
	out->sectors = l[me].cap;
	out->stride = l[me].stripe;
	out->meta_offset = tbl * 512;
	out->meta_len = (tbl + 17 <= n ? 17 : n - tbl) * 512; /* -D dumps the table and the block */
	snprintf(out->set, sizeof(out->set), "asr_%s", l[me].name);
	if (asr_type(l[me].type) == PM_RT_SPARE) {
		snprintf(out->set, sizeof(out->set), ".asr_spares");
		out->type = PM_RT_SPARE;
		return 1;
	}
	if (top < 0 || fwl < 0)
		return pm_rf_bad(why, whylen, "asr: Can't find a logical array config for disk %x", drivemagic);

	/* members: the physical lines after this disk's logical line, ordered by hba:channel:lun:id */
	out->type = asr_type(l[fwl].type);
	out->members = l[fwl].count;
	for (unsigned i = (unsigned)fwl + 1; i < cnt && l[i].level == ASR_FWP; i++)
		if (l[i].id < l[me].id)
			out->index++;
	if (l[top].level == ASR_FWL2) {
		/* two levels: the logical line's set under the top one, as dmraid names them */
		snprintf(out->subset, sizeof(out->subset), ".asr_%s_%x_donotuse", l[fwl].name, l[fwl].magic);
		for (int j = 0; j < fwl; j++)
			if (l[j].level == ASR_FWL)
				out->subset_index++;
		out->super_type = PM_RT_RAID1; /* dmraid hard-wires it ("FIXME") */
		out->super_stride = l[me].stripe;
		out->subsets = l[top].count;
	}
	return 1;
}

const struct pm_raid_format pm_raid_asr = {
	.name = "asr", .descr = "Adaptec HostRAID ASR", .caps = "0,1,10", .read = asr_read,
};
